-- Bulk actions on every task matching a filter: the PostgreSQL table in SQLite's types (see
-- the PostgreSQL migration of the same name for the invariants). Times are the store's
-- fixed-width UTC text, so text order is time order.
create table task_actions (
    id               text primary key not null,
    action           text not null check (action in ('cancel', 'run', 'delete')),
    filter           text not null,
    state            text not null default 'running'
                     check (state in ('running', 'completed', 'failed')),
    matched          integer not null default 0,
    done             integer not null default 0,
    skipped          integer not null default 0,
    cursor           text,
    bound            text not null,
    actor            text,
    owner            text,
    lease_expires_at text,
    error            text,
    created_at       text not null,
    finished_at      text
) strict;
create index task_actions_created_idx on task_actions (created_at desc, id desc);
create index task_actions_running_idx on task_actions (lease_expires_at) where state = 'running';
