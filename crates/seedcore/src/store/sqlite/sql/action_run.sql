-- The rule of run.sql for every task among ?1 (a JSON array of ids); ?2 is now, ?3-?5 as in
-- run.sql.
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
    finished_at = null, worker_id = null, updated_at = ?2
where id in (select value from json_each(?1)) and status in (select value from json_each(?3))
returning status
