-- Claims up to ?7 ready tasks for worker ?1 in one statement, all under the lease token ?2
-- (every fenced write checks the task id too, so one token per claim is enough). SQLite lets
-- one writer in at a time, so no task is claimed twice. The subquery walks the partial index of
-- ready tasks in claim order (priority, start time, arrival) and stops at the limit; without
-- `indexed by` the planner, lacking statistics, would take the status index and sort every
-- ready task. ?4 is now; ?8 a JSON array of the queues this lane serves (null: all), ?9 one of
-- the queues it leaves to other lanes; ?10 a JSON array of the task types taken (null: all).
-- Paused queues are skipped. The actor is cleared: the
-- worker's own changes are its (see `model::actor`).
update tasks
set status = 'running',
    attempts = attempts + 1,
    worker_id = ?1,
    lease_token = ?2,
    lease_expires_at = ?3,
    started_at = ?4,
    updated_at = ?4,
    actor = null
where id in (
    select id
    from tasks indexed by tasks_ready_idx
    where status in ('queued', 'retry')
      and run_at <= ?4
      and drift_score >= ?5 and drift_score < ?6
      and (?8 is null or queue in (select value from json_each(?8)))
      and queue not in (select value from json_each(?9))
      and (?10 is null or type in (select value from json_each(?10)))
      and queue not in (select name from queues where paused)
    order by priority desc, run_at, rowid
    limit ?7
)
returning *
