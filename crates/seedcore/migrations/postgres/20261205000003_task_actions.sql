-- Bulk actions on every task matching a filter (`POST /api/v1/tasks/actions`), run on the
-- server in batches. Each batch commits its changes to the tasks together with the action's
-- cursor and counts, so an action resumes exactly where it stopped after a crash.
--
-- Invariants:
-- - `cursor` is the greatest task id handled so far (batches walk the ids in order); null
--   before the first batch.
-- - Only tasks created at or before `bound` (the moment the action was accepted) are touched.
-- - A running action is driven by the process named in `owner` while `lease_expires_at` is
--   in the future; each batch renews the lease, and an action whose lease expired is picked
--   up by any serving process (its owner stopped or crashed).
-- - `matched = done + skipped` at every commit.
create table task_actions (
    id               uuid primary key,
    action           text not null check (action in ('cancel', 'run', 'delete')),
    filter           jsonb not null,
    state            text not null default 'running'
                     check (state in ('running', 'completed', 'failed')),
    matched          bigint not null default 0,
    done             bigint not null default 0,
    skipped          bigint not null default 0,
    cursor           uuid,
    bound            timestamptz not null,
    actor            text,
    owner            text,
    lease_expires_at timestamptz,
    error            text,
    created_at       timestamptz not null default now(),
    finished_at      timestamptz
);
create index task_actions_created_idx on task_actions (created_at desc, id desc);
create index task_actions_running_idx on task_actions (lease_expires_at) where state = 'running';
