-- The W3C `traceparent` a task was created with (null without one): its executions log the
-- trace, and remote executors receive a child of it.
-- `task_history` keeps the columns of `tasks` in the same order (rows move with `select *`),
-- so the column is added to both, and `all_tasks`, whose `select *` was expanded when it was
-- made, is made again to show it.

alter table tasks add column traceparent text;
alter table task_history add column traceparent text;

create or replace view all_tasks as
    select * from tasks
    union all
    select * from task_history;
