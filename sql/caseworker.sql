-- caseworker: each child's primary worker on the run date (docs/data-contract.md §10.4).
-- Binds: :run_date. One row per current primary assignment: started on or before the run
-- date and not ended before it; latest start first (ties: the larger assignment_id). The
-- receive step takes each PID's first row. Staff names are personal data: they go to the
-- reports only, never to a log or a mail body.
-- Only children with a runaway episode are read: the caseworker columns sit on rows that
-- come from an episode (Still missing now, the unmatched episodes, Reported late,
-- returned still active), and reading every child in care would cost the receive seconds.
-- Oracle: if start_date/end_date carry a time of day, compare TRUNC(a.start_date) and
-- TRUNC(a.end_date) in a production copy of this file.
SELECT a.person_id       AS PID,
       a.worker_name     AS CASEWORKER,
       a.unit            AS UNIT,
       a.supervisor_name AS SUPERVISOR
  FROM assignment a
 WHERE a.is_primary = 1
   AND a.start_date <= :run_date
   AND (a.end_date IS NULL OR a.end_date >= :run_date)
   AND a.person_id IN (SELECT e.person_id FROM runaway_episode e)
 ORDER BY a.person_id, a.start_date DESC, a.assignment_id DESC
