-- How far along a task's current attempt is, as its worker last reported it (the pull API's
-- task heartbeat, `progress` from 0 to 1); null until a report, and again when the next
-- attempt starts: the claim clears it.
-- `task_history` keeps the columns of `tasks` in the same order (rows move with `select *`),
-- so the column is added to both, and `all_tasks`, whose `select *` was expanded when it was
-- made, is made again to show it.

alter table tasks add column progress double precision;
alter table task_history add column progress double precision;

create or replace view all_tasks as
    select * from tasks
    union all
    select * from task_history;

-- The claim as the queue_concurrency migration made it, and it clears the progress.
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
    select array_agg(name order by name) into limited
    from queues
    where concurrency is not null and not paused
      and (only_queues is null or name = any(only_queues))
      and not (name = any(skip_queues));
    if limited is null then
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
            actor = null,
            progress = null
        from picked
        where t.id = picked.id
        returning t.*;
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
        select id, priority, run_at, seq
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
        select c.id, c.priority, c.run_at, c.seq
        from room
        cross join lateral (
            select id, priority, run_at, seq
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
        select id
        from (select * from open_queues union all select * from limited_queues) candidates
        order by priority desc, run_at, seq
        limit how_many
    )
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
    returning t.*;
end
$$;
