-- The task statistics (`GET /api/v1/stats/tasks`) read the tasks that finished in the last
-- minutes to a day, a range of this index. Here every finished task stays in `tasks` until it
-- is pruned, so without it the statistics would read them all. Unfinished tasks are left out:
-- claims and heartbeats never touch it, and only the update that finishes a task adds an entry.
create index tasks_finished_idx on tasks (finished_at) where finished_at is not null;
