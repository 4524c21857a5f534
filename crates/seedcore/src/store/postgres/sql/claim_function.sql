-- The claim as the migrations leave it: the function that migration
-- 20261210000001_trail_by_claim_and_finish creates, with the planner settings that migration
-- 20261212000001_plans_by_key adds by `alter function … set` (migrations are never edited: a
-- change is a new migration, and this file follows it). `sql/claim.sql` calls it.
-- Picks up to `how_many` ready tasks (queued or retry, due, in the drift range, the lane's
-- queues and the asked types, their queue not paused), higher priority first, then start
-- time, then arrival; rows another worker is claiming are skipped, not waited for. Each
-- picked task becomes `running` with the attempt counted, this worker as its owner and a
-- fresh lease token and expiry. The actor is cleared: the worker's own changes are its; so is
-- the progress, which belongs to an attempt. The claim writes the `claimed` event rows and
-- the counter deltas itself, with `seedcore.trail` set so the update trigger steps aside
-- (see the trail_by_claim_and_finish migration).
-- A queue with a concurrency limit never has more running tasks than its limit: when the
-- claim may take from such queues it locks their rows in name order (claims on them
-- serialise; claims on unlimited queues do not wait), counts their running tasks and takes
-- at most what each limit leaves. Without limited queues it runs the plain statement after
-- one lookup of the queues table.
-- The planner settings keep the partial index of ready tasks in use (see the
-- claim_function migration) and make one generic plan per session that finds tasks by key,
-- whatever the table's size when it is made (see the plans_by_key migration).
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
