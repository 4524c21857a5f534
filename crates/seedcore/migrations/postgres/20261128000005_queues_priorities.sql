-- Queues, priorities, delayed tasks and idempotency keys.

alter table tasks add column queue text not null default 'default';
alter table tasks add column priority integer not null default 0;
-- Insertion order: first in, first out within a priority and start time.
alter table tasks add column seq bigint generated always as identity;
alter table tasks add column idempotency_key text;

-- A second create with the same key finds the first task.
create unique index tasks_idempotency_idx on tasks (idempotency_key)
    where idempotency_key is not null;

-- The claim walks ready tasks in claim order: higher priority first, then start time, then
-- arrival.
drop index tasks_ready_idx;
create index tasks_ready_idx on tasks (priority desc, run_at, seq)
    where status in ('queued', 'retry');

-- Paused queues are skipped by every claim.
create table queues (
    name       text primary key,
    paused     boolean not null default false,
    updated_at timestamptz not null default now()
);
