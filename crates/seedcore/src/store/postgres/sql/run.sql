-- Queues a created, failed or cancelled task again, its attempts reset. A task with parents
-- waits for them again: `blocked` unless every parent completed (or, running on failure, is
-- final); it moves on when the unfinished ones finish, or when a failed one is run again and
-- completes. $2: the statuses `run` queues from (`TaskStatus::RUNNABLE`); a parent is done in
-- $3 (`PARENT_DONE`), or for a task that runs on failure in $4 (`PARENT_DONE_ON_FAILURE`). $5: who runs it (see `model::actor`).
update tasks t
set status = case
        when exists (
            select 1 from unnest(t.depends_on) d(id) join all_tasks p on p.id = d.id
            where not (p.status = any($3) or (t.run_on_failure and p.status = any($4))))
        then 'blocked' else 'queued' end,
    result = null, error = null, attempts = 0, run_at = now(), started_at = null,
    finished_at = null, worker_id = null, updated_at = now(), actor = $5
where id = $1 and status = any($2)
returning *
