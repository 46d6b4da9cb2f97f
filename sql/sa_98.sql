-- sa_98: IMPACT runaway episodes that overlap [from, to] (docs/data-contract.md §2), where
-- from = period start - H and to = the later of (period end + H) and the run date,
-- H = match window + near_miss_days (the follow-up aids, §8, look that far).
-- Binds: :from_date, :to_date_next (the day after "to").
-- A return before the runaway is a typo and the episode counts as open (contract §5), so
-- such an episode is kept whatever its return date says.
SELECT e.episode_id    AS EPISODE_ID,
       e.person_id     AS PID,
       p.last_name     AS LAST_NAME,
       p.first_name    AS FIRST_NAME,
       p.birth_date    AS DOB,
       e.runaway_date  AS RUNAWAY_DATE,
       e.return_date   AS RETURN_DATE,
       e.county_code   AS COUNTY_CODE
  FROM runaway_episode e
  LEFT JOIN person p ON p.person_id = e.person_id
 WHERE e.runaway_date < :to_date_next
   AND (e.return_date IS NULL OR e.return_date >= :from_date
        OR e.return_date < e.runaway_date)
 ORDER BY e.person_id, e.episode_id, e.runaway_date
