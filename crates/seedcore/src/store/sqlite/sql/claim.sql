-- Claims up to ?7 ready tasks for worker ?1 in one statement, all under the lease token ?2
-- (every fenced write checks the task id too, so one token per claim is enough). SQLite lets
-- one writer in at a time, so no task is claimed twice. The first arm walks the partial index of
-- ready tasks in claim order (priority, start time, arrival) and stops at the limit; without
-- `indexed by` the planner, lacking statistics, would take the status index and sort every
-- ready task. ?4 is now; ?8 a JSON array of the queues this lane serves (null: all), ?9 one of
-- the queues it leaves to other lanes; ?10 a JSON array of the task types taken (null: all).
-- Paused queues are skipped. A queue with a concurrency limit is left to the second arm, which
-- takes at most the room its limit leaves beside its running tasks: the single writer makes
-- that count exact. With no limited queue `room` is empty and the second arm reads nothing.
-- The actor is cleared: the worker's own changes are its (see `model::actor`); so is the
-- progress, which belongs to an attempt.
with room as (
    select q.name,
           q.concurrency - (select count(*) from tasks r indexed by tasks_lease_idx
                            where r.status = 'running' and r.queue = q.name) as free
    from queues q
    where q.concurrency is not null and not q.paused
)
update tasks
set status = 'running',
    attempts = attempts + 1,
    worker_id = ?1,
    lease_token = ?2,
    lease_expires_at = ?3,
    started_at = ?4,
    updated_at = ?4,
    actor = null,
    progress = null
where id in (
    select id from (
    select id, priority, run_at, arrival from (
        select id, priority, run_at, rowid as arrival
        from tasks indexed by tasks_ready_idx
        where status in ('queued', 'retry')
          and run_at <= ?4
          and drift_score >= ?5 and drift_score < ?6
          and (?8 is null or queue in (select value from json_each(?8)))
          and queue not in (select value from json_each(?9))
          and (?10 is null or type in (select value from json_each(?10)))
          and queue not in (select name from queues where paused or concurrency is not null)
        order by priority desc, run_at, rowid
        limit ?7
    )
    union all
    select id, priority, run_at, arrival from (
        select t.id, t.priority, t.run_at, t.rowid as arrival, room.free,
               row_number() over (
                   partition by t.queue order by t.priority desc, t.run_at, t.rowid
               ) as nth
        from room
        cross join tasks t indexed by tasks_queue_ready_idx
        where t.queue = room.name and room.free > 0
          and t.status in ('queued', 'retry')
          and t.run_at <= ?4
          and t.drift_score >= ?5 and t.drift_score < ?6
          and (?8 is null or t.queue in (select value from json_each(?8)))
          and t.queue not in (select value from json_each(?9))
          and (?10 is null or t.type in (select value from json_each(?10)))
    )
    where nth <= free
    order by priority desc, run_at, arrival
    limit ?7
    )
)
returning *
