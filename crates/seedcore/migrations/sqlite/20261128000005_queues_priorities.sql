-- Queues, priorities, delayed tasks and idempotency keys. Arrival order is the rowid.

alter table tasks add column queue text not null default 'default';
alter table tasks add column priority integer not null default 0;
alter table tasks add column idempotency_key text;

create unique index tasks_idempotency_idx on tasks (idempotency_key)
    where idempotency_key is not null;

-- An index entry ends with its rowid, so this walks ready tasks in claim order: priority,
-- start time, arrival.
drop index tasks_ready_idx;
create index tasks_ready_idx on tasks (priority desc, run_at)
    where status in ('queued', 'retry');

create table queues (
    name       text primary key not null,
    paused     integer not null default 0,
    updated_at text not null
) strict;
