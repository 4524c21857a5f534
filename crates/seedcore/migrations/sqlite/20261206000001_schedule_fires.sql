-- The fire history of each schedule, as on PostgreSQL: one row per task a fire created,
-- written in the transaction that inserts the task, at most the last 100 per schedule (pruned
-- in the same transaction), deleted with the schedule. `fired_at` is the scheduled fire time,
-- or the moment of a manual trigger; `at` is when the row was written. Times are TEXT in the
-- store's fixed-width UTC format; `task_id` is not a foreign key (tasks are pruned on their own).
create table schedule_fires (
    seq         integer primary key,
    schedule_id text not null references schedules (id) on delete cascade,
    fired_at    text not null,
    task_id     text not null,
    manual      integer not null default 0,
    at          text not null
) strict;

-- A schedule's fires newest first (the API's list and the pruning keep the same order).
create index schedule_fires_schedule_idx on schedule_fires (schedule_id, fired_at desc, seq desc);
