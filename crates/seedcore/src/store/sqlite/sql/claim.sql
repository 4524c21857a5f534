-- Claims up to ?7 ready tasks for worker ?1 in one statement, all under the lease token ?2
-- (every fenced write checks the task id too, so one token per claim is enough). SQLite lets
-- one writer in at a time, so no task is claimed twice. The subquery walks the partial index of
-- ready tasks in claim order and stops at the limit; without `indexed by` the planner, lacking
-- statistics, would take the status index and sort every ready task. ?4 is now.
update tasks
set status = 'running',
    attempts = attempts + 1,
    worker_id = ?1,
    lease_token = ?2,
    lease_expires_at = ?3,
    started_at = ?4,
    updated_at = ?4
where id in (
    select id
    from tasks indexed by tasks_ready_idx
    where status in ('queued', 'retry')
      and run_at <= ?4
      and drift_score >= ?5 and drift_score < ?6
    order by run_at, id
    limit ?7
)
returning *
