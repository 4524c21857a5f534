-- The rule of run.sql for every task among $1: a created, failed or cancelled task is queued
-- again, its attempts reset (blocked while a parent is not done). $2-$4 as in run.sql.
update tasks t
set status = case
        when exists (
            select 1 from unnest(t.depends_on) d(id) join all_tasks p on p.id = d.id
            where not (p.status = any($3) or (t.run_on_failure and p.status = any($4))))
        then 'blocked' else 'queued' end,
    result = null, error = null, attempts = 0, run_at = now(), started_at = null,
    finished_at = null, worker_id = null, updated_at = now()
where id = any($1) and status = any($2)
returning t.status
