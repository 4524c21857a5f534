-- The claim, as migration 20261205000006_pull_workers installs it (migrations are never
-- edited: a change is a new migration, and this file follows it). `sql/claim.sql` calls it.
-- Picks up to `how_many` ready tasks (queued or retry, due, in the drift range, the lane's
-- queues and the asked types, their queue not paused), higher priority first, then start
-- time, then arrival; rows another worker is claiming are skipped, not waited for. Each
-- picked task becomes `running` with the attempt counted, this worker as its owner and a
-- fresh lease token and expiry. The actor is cleared: the worker's own changes are its.
-- The planner settings keep the partial index of ready tasks in use (see the
-- claim_function migration); PL/pgSQL keeps the plan for the session.
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
