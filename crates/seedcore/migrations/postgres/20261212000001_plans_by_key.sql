-- The claim and the completion plan their statements once per session, and every plan they
-- may keep finds tasks by key.
--
-- PL/pgSQL prepares each statement, but PostgreSQL chose a custom plan on every claim (the
-- generic plan of `limit how_many` never looks cheaper), planning anew for ~5 % of a drain's
-- time; about half the completions ran generic plans and the rest custom ones. Both shapes
-- could read all of `tasks`: while the hot table holds a few thousand to some tens of
-- thousands of rows the planner may join a batch to it by a hash join over a sequential scan,
-- and a generic plan made while the table is small or empty keeps that shape, or a nested loop
-- over a materialized sequential scan, as the table grows. Forcing the generic plan alone did
-- exactly that when the table started empty. So both functions now force the generic plan and
-- rule out what would read the table whole: sequential scans (only the lookups in `queues`, a
-- table of a few rows with nothing better to use, still scan it), hash and merge joins. What
-- remains joins a batch to `tasks` by its primary key and walks `tasks_ready_idx` in order, at
-- any size the table had when the plan was made. JIT stays off, so a disabled node's cost
-- cannot switch it on. Bitmap scans stay allowed in the completion. An analyze of `tasks` still
-- invalidates the kept plans, and the next call makes them again from the new statistics.

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
set enable_seqscan = off
set enable_hashjoin = off
set enable_mergejoin = off
set plan_cache_mode = force_generic_plan
set jit = off
as $$
declare
    limited text[];
begin
    -- This statement writes the trail of what it changes; the update trigger steps aside.
    perform set_config('seedcore.trail', 'written', true);
    select array_agg(name order by name) into limited
    from queues
    where concurrency is not null and not paused
      and (only_queues is null or name = any(only_queues))
      and not (name = any(skip_queues));
    if limited is null then
        return query
        with picked as (
            select id, status
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
        ),
        claimed as (
            update tasks t
            set status = 'running',
                attempts = t.attempts + 1,
                worker_id = worker,
                lease_token = gen_random_uuid(),
                lease_expires_at = now() + make_interval(secs => lease_seconds),
                started_at = now(),
                updated_at = now(),
                actor = null,
                progress = null
            from picked
            where t.id = picked.id
            returning t, picked.status as old_status
        ),
        events as (
            insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id,
                                     actor)
            select (c.t).id, 'claimed', c.old_status, 'running', (c.t).attempts, worker,
                   'worker:' || worker
            from claimed c
        ),
        deltas as (
            insert into counter_deltas (kind, a, b, n)
            select 'tasks', v.queue, v.status, sum(v.n)
            from claimed c
            cross join lateral (values ((c.t).queue, 'running', 1),
                                       ((c.t).queue, c.old_status, -1)) v(queue, status, n)
            group by v.queue, v.status
        )
        select (c.t).* from claimed c;
        perform set_config('seedcore.trail', '', true);
        return;
    end if;
    -- Locked in name order so two claims never wait on each other crosswise.
    perform 1 from queues where name = any(limited) order by name for update;
    return query
    with room as materialized (
        select q.name,
               q.concurrency - (select count(*) from tasks r
                                where r.queue = q.name and r.status = 'running') as free
        from queues q
        where q.name = any(limited) and not q.paused
    ),
    open_queues as (
        select id, status, priority, run_at, seq
        from tasks
        where status in ('queued', 'retry')
          and run_at <= now()
          and drift_score >= drift_from and drift_score < drift_below
          and (only_queues is null or queue = any(only_queues))
          and not (queue = any(skip_queues))
          and not (queue = any(limited))
          and (only_types is null or type = any(only_types))
          and queue not in (select name from queues where paused)
        order by priority desc, run_at, seq
        limit how_many
        for update skip locked
    ),
    limited_queues as (
        select c.id, c.status, c.priority, c.run_at, c.seq
        from room
        cross join lateral (
            select id, status, priority, run_at, seq
            from tasks
            where queue = room.name
              and status in ('queued', 'retry')
              and run_at <= now()
              and drift_score >= drift_from and drift_score < drift_below
              and (only_types is null or type = any(only_types))
            order by priority desc, run_at, seq
            limit least(room.free, how_many)
            for update skip locked
        ) c
        where room.free > 0
    ),
    picked as (
        select id, status
        from (select * from open_queues union all select * from limited_queues) candidates
        order by priority desc, run_at, seq
        limit how_many
    ),
    claimed as (
        update tasks t
        set status = 'running',
            attempts = t.attempts + 1,
            worker_id = worker,
            lease_token = gen_random_uuid(),
            lease_expires_at = now() + make_interval(secs => lease_seconds),
            started_at = now(),
            updated_at = now(),
            actor = null,
            progress = null
        from picked
        where t.id = picked.id
        returning t, picked.status as old_status
    ),
    events as (
        insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id,
                                 actor)
        select (c.t).id, 'claimed', c.old_status, 'running', (c.t).attempts, worker,
               'worker:' || worker
        from claimed c
    ),
    deltas as (
        insert into counter_deltas (kind, a, b, n)
        select 'tasks', v.queue, v.status, sum(v.n)
        from claimed c
        cross join lateral (values ((c.t).queue, 'running', 1),
                                   ((c.t).queue, c.old_status, -1)) v(queue, status, n)
        group by v.queue, v.status
    )
    select (c.t).* from claimed c;
    perform set_config('seedcore.trail', '', true);
end
$$;

alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set enable_seqscan = off;
alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set enable_hashjoin = off;
alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set enable_mergejoin = off;
alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set plan_cache_mode = force_generic_plan;

-- Settling dependents runs inside the completion, so it would inherit the settings above, and so
-- would the update trigger its statement fires, whose joins of transition tables need hash joins
-- when a settle queues thousands of children. It keeps the planner's usual choices.
alter function seedcore_settle_dependents(uuid[]) set plan_cache_mode = auto;
alter function seedcore_settle_dependents(uuid[]) set enable_seqscan = on;
alter function seedcore_settle_dependents(uuid[]) set enable_hashjoin = on;
alter function seedcore_settle_dependents(uuid[]) set enable_mergejoin = on;
