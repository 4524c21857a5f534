-- Queues a created, failed or cancelled task again (?1), its attempts reset; ?2 is now. A task
-- with parents waits for them again: `blocked` unless every parent completed (or, running on
-- failure, is final). See the PostgreSQL run.sql. ?3, ?4 and ?5 are its $2, $3 and $4, as
-- JSON arrays. ?6: who runs it (see `model::actor`).
update tasks
set status = case
        when exists (
            select 1 from task_dependencies d join tasks p on p.id = d.depends_on
            where d.task_id = tasks.id
              and not (p.status in (select value from json_each(?4))
                       or (tasks.run_on_failure
                           and p.status in (select value from json_each(?5)))))
        then 'blocked' else 'queued' end,
    result = null, error = null, attempts = 0, run_at = ?2, started_at = null,
    finished_at = null, worker_id = null, updated_at = ?2, actor = ?6
where id = ?1 and status in (select value from json_each(?3))
returning *
