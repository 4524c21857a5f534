-- Cron schedules: each fire creates one task from the template columns (task_type … drift_score),
-- keyed by the task's idempotency key `schedule:<id>:<fire time>`. Processes lock due rows with
-- `for update skip locked` and advance next_fire_at in the same transaction as the insert.
create table schedules (
    id              uuid primary key,
    name            text not null unique,
    cron            text not null,
    timezone        text not null default 'UTC',
    task_type       text not null,
    params          jsonb not null default '{}',
    description     text not null default '',
    domain          text,
    queue           text not null default 'default',
    priority        integer not null default 0,
    max_attempts    integer not null default 3 check (max_attempts >= 1),
    timeout_seconds double precision,
    drift_score     double precision not null default 0,
    enabled         boolean not null default true,
    misfire_policy  text not null default 'run_once' check (misfire_policy in ('run_once', 'skip')),
    -- Null while disabled, or when the expression never matches again.
    next_fire_at    timestamptz,
    last_fire_at    timestamptz,
    -- The task of last_fire_at; not a foreign key: tasks outlive their schedule and vice versa.
    last_task_id    uuid,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

-- The scheduler's two queries: the due schedules, and the earliest next fire.
create index schedules_due_idx on schedules (next_fire_at) where enabled;
