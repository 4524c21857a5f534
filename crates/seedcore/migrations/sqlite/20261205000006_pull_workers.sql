-- Workers in other processes and languages claim over HTTP (the pull API).
--
-- `pull_workers` holds what such a worker registered beside its `workers` row (which lists it
-- with the built-in ones) and the state an operator set: running, quiet (claims nothing more)
-- or terminate (should stop). Queues, types and labels are JSON text. `finished_leases`
-- remembers which lease token finished which task, and as what, so a completion repeated with
-- the same token answers the same outcome; a row is written in the transaction that finishes
-- the attempt and forgotten after a day.

create table pull_workers (
    id             text primary key not null references workers (id) on delete cascade,
    name           text not null,
    queues         text,
    types          text,
    labels         text not null default '{}',
    client_name    text not null default '',
    client_version text not null default '',
    state          text not null default 'running'
                   check (state in ('running', 'quiet', 'terminate'))
) strict;

create table finished_leases (
    lease_token text not null,
    task_id     text not null,
    outcome     text not null,
    finished_at text not null,
    -- One claim of several tasks hands them all the same token on SQLite.
    primary key (lease_token, task_id)
) strict;

create index finished_leases_at_idx on finished_leases (finished_at);
