-- Cron schedules, as on PostgreSQL: each fire creates one task from the template columns
-- (task_type … drift_score), keyed by the task's idempotency key `schedule:<id>:<fire time>`.
-- The scheduler reads due rows and advances next_fire_at in one `begin immediate` transaction.
-- Times are TEXT in the store's fixed-width UTC format, params JSON text, enabled 0 or 1.
create table schedules (
    id              text primary key not null,
    name            text not null unique,
    cron            text not null,
    timezone        text not null default 'UTC',
    task_type       text not null,
    params          text not null default '{}' check (json_type(params) = 'object'),
    description     text not null default '',
    domain          text,
    queue           text not null default 'default',
    priority        integer not null default 0,
    max_attempts    integer not null default 3 check (max_attempts >= 1),
    timeout_seconds real,
    drift_score     real not null default 0,
    enabled         integer not null default 1,
    misfire_policy  text not null default 'run_once' check (misfire_policy in ('run_once', 'skip')),
    -- Null while disabled, or when the expression never matches again.
    next_fire_at    text,
    last_fire_at    text,
    -- The task of last_fire_at; not a foreign key: tasks outlive their schedule and vice versa.
    last_task_id    text,
    created_at      text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at      text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
) strict;

-- The scheduler's two queries: the due schedules, and the earliest next fire.
create index schedules_due_idx on schedules (next_fire_at) where enabled;
