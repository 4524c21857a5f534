-- Workers in other processes and languages claim over HTTP (the pull API).
--
-- `pull_workers` holds what such a worker registered beside its `workers` row (which lists it
-- with the built-in ones) and the state an operator set: running, quiet (claims nothing more)
-- or terminate (should stop). `finished_leases` remembers which lease token finished which
-- task, and as what, so a completion repeated with the same token answers the same outcome;
-- a row is written in the transaction that finishes the attempt and forgotten after a day.
-- The claim gains a filter by task type: the function's signature changes, so the old one is
-- dropped first (`sql/claim.sql` names every argument).

create table pull_workers (
    id             text primary key references workers (id) on delete cascade,
    name           text not null,
    queues         text[],
    types          text[],
    labels         jsonb not null default '{}',
    client_name    text not null default '',
    client_version text not null default '',
    state          text not null default 'running'
                   check (state in ('running', 'quiet', 'terminate'))
);

create table finished_leases (
    lease_token uuid not null,
    task_id     uuid not null,
    outcome     text not null,
    finished_at timestamptz not null default now(),
    primary key (lease_token, task_id)
);

create index finished_leases_at_idx on finished_leases (finished_at);

drop function seedcore_claim(text, bigint, double precision, double precision,
                             double precision, text[], text[]);

create or replace function seedcore_claim(
    worker text,
    how_many bigint,
    drift_from double precision,
    drift_below double precision,
    lease_seconds double precision,
    only_queues text[],
    skip_queues text[],
    only_types text[]
) returns setof tasks
language plpgsql
set enable_bitmapscan = off
set enable_sort = off
set jit = off
as $$
begin
    return query
    with picked as (
        select id
        from tasks
        where status in ('queued', 'retry')
          and run_at <= now()
          and drift_score >= drift_from and drift_score < drift_below
          and (only_queues is null or queue = any(only_queues))
          and not (queue = any(skip_queues))
          and (only_types is null or type = any(only_types))
          and queue not in (select name from queues where paused)
        order by priority desc, run_at, seq
        limit how_many
        for update skip locked
    )
    update tasks t
    set status = 'running',
        attempts = t.attempts + 1,
        worker_id = worker,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => lease_seconds),
        started_at = now(),
        updated_at = now(),
        actor = null
    from picked
    where t.id = picked.id
    returning t.*;
end
$$;
