-- The fire history of each schedule: one row per task a fire created, written in the
-- transaction that inserts the task (a fire whose key was already used creates no task and
-- no row). `fired_at` is the scheduled fire time, or the moment of a manual trigger; `at` is
-- when the row was written. The same transaction keeps the last 100 rows per schedule, so a
-- schedule's history never grows past that. Rows go with their schedule; `task_id` is not a
-- foreign key: tasks are pruned on their own retention policy.
create table schedule_fires (
    seq         bigint generated always as identity primary key,
    schedule_id uuid not null references schedules (id) on delete cascade,
    fired_at    timestamptz not null,
    task_id     uuid not null,
    manual      boolean not null default false,
    at          timestamptz not null default now()
);

-- A schedule's fires newest first (the API's list and the pruning keep the same order).
create index schedule_fires_schedule_idx on schedule_fires (schedule_id, fired_at desc, seq desc);
