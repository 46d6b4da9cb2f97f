-- send_children: one row per removal that overlaps the period (data contract §2), with its
-- discharge date (§10.5: IN_CARE on the reports; never sent to DPS).
-- Binds: :period_start (first day), :period_end_next (the day after the last day, so an
-- Oracle DATE with a time of day on the last day is still inside).
SELECT p.person_id      AS PID,
       p.last_name      AS LAST_NAME,
       p.first_name     AS FIRST_NAME,
       p.middle_name    AS MIDDLE_NAME,
       p.suffix         AS SUFFIX,
       p.birth_date     AS DOB,
       p.sex            AS SEX,
       p.race_ethnicity AS RACE_ETHNICITY,
       r.removal_id     AS REMOVAL_ID,
       r.removal_date   AS REMOVAL_DATE,
       r.county_code    AS COUNTY_CODE,
       r.discharge_date AS DISCHARGE_DATE
  FROM removal r
  JOIN person p ON p.person_id = r.person_id
 WHERE r.removal_date < :period_end_next
   AND (r.discharge_date IS NULL OR r.discharge_date >= :period_start)
 ORDER BY p.person_id, r.removal_id
