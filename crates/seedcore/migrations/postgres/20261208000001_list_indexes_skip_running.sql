-- The task list's two time indexes on the hot table hold no running task, and the list reads
-- the hot table in two parts.
--
-- A claim changes a task's status, so its new row version cannot be a HOT update: every index
-- of `tasks` whose predicate the running row meets gets an entry. Before, that was four (the
-- key, the lease index, and these two list indexes); the completion that follows adds four
-- more. Running tasks are few (at most the workers' slots and the tasks they hold ahead) and
-- short-lived, so the list can sort them instead: with both indexes partial, a claim writes
-- two index entries instead of four. Measured with the W1 drain (docs/benchmarks.md).
--
-- The list reads the tasks that are not running from these indexes (with the history's, merged)
-- and the running ones apart, sorted: see `store/postgres/tasks.rs`.

drop index tasks_created_idx;
create index tasks_created_idx on tasks (created_at desc, id desc)
    where status <> 'running';
drop index tasks_status_created_idx;
create index tasks_status_created_idx on tasks (status, created_at desc, id desc)
    where status <> 'running';
