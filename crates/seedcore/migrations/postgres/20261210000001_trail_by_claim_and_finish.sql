-- Claims and completions write their own trail, and the update trigger steps aside for them.
--
-- The statement trigger of updates joins every changed row's old and new versions and writes
-- the event rows and counter deltas from that join. For a claim or a completion the statement
-- already knows all of it (which tasks, from which status, to which), so the join is work done
-- twice. Measured end to end on the W1 drain (docs/benchmarks.md): the trigger firing with an
-- empty body costs next to nothing, its body about 30 % of the drain, and with the rows
-- written here the drain is 8-15 % faster.
--
-- - `seedcore_claim` and the new `seedcore_finish` set the transaction-local setting
--   `seedcore.trail` to `written` around their one update, write the same `claimed` and
--   `completed`/`failed`/`retry` event rows and the same deltas in that statement, and clear
--   the setting before they return, so no other statement of the transaction is left out.
-- - The trigger's `when` leaves out a statement made while the setting says so.
-- - `seedcore_finish` then does what the trigger did after a completion: the wake-up when an
--   outcome put a task back to `retry`, and the settling of waiting children when some task
--   waits (the same probe, in a new statement, as the trigger's).
-- Every event row, delta and notification is the same as before; only who writes it moved.

drop trigger tasks_updated on tasks;
create trigger tasks_updated after update on tasks
    referencing old table as old_rows new table as new_rows
    for each statement
    when (current_setting('seedcore.trail', true) is distinct from 'written')
    execute function seedcore_tasks_updated();

-- The claim, as before, writing its `claimed` rows and deltas (sql/claim_function.sql).
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

-- Records how a batch of attempts ended, each only while its lease token is current (a token
-- exists only while its task runs: see the lease_only_while_running migration). Rows are
-- locked in id order, as the lease renewal does, so the two never deadlock. Returns the
-- recorded leases. `sql/finish.sql` calls it.
create or replace function seedcore_finish(
    ids uuid[],
    tokens uuid[],
    statuses text[],
    results jsonb[],
    errors text[],
    run_ats timestamptz[]
) returns table (id uuid, token uuid)
language plpgsql
set jit = off
as $$
declare
    recorded_ids uuid[];
    recorded_tokens uuid[];
    requeued boolean;
    done uuid[];
begin
    perform set_config('seedcore.trail', 'written', true);
    with held as (
        select t.id, b.token, b.status, b.result, b.error, b.run_at
        from unnest(ids, tokens, statuses, results, errors, run_ats)
             as b(id, token, status, result, error, run_at)
        join tasks t on t.id = b.id and t.lease_token = b.token
        order by t.id
        for update of t
    ),
    finished as (
        update tasks t
        set status = held.status,
            result = held.result,
            error = held.error,
            run_at = coalesce(held.run_at, t.run_at),
            finished_at = case when held.status = 'retry' then null else now() end,
            lease_token = null,
            lease_expires_at = null,
            updated_at = now()
        from held
        where t.id = held.id
        returning t.id, held.token, t.status, t.queue, t.attempts, t.worker_id, t.error,
                  t.actor
    ),
    events as (
        insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id,
                                 error, actor)
        select f.id, f.status, 'running', f.status, f.attempts, f.worker_id,
               case when f.status in ('failed', 'retry') then f.error end,
               coalesce(f.actor, 'worker:' || f.worker_id)
        from finished f
    ),
    deltas as (
        insert into counter_deltas (kind, a, b, n)
        select 'tasks', v.queue, v.status, sum(v.n)
        from finished f
        cross join lateral (values (f.queue, f.status, 1), (f.queue, 'running', -1))
            v(queue, status, n)
        group by v.queue, v.status
    )
    select array_agg(f.id), array_agg(f.token),
           coalesce(bool_or(f.status = 'retry'), false),
           array_agg(f.id) filter (where f.status <> 'retry')
    into recorded_ids, recorded_tokens, requeued, done
    from finished f;
    perform set_config('seedcore.trail', '', true);

    if requeued then
        perform pg_notify('seedcore_tasks', '');
    end if;
    if done is not null and exists (select 1 from tasks where status = 'blocked') then
        perform seedcore_settle_dependents(done);
    end if;
    return query select r.id, r.token from unnest(recorded_ids, recorded_tokens) r(id, token);
end
$$;
