-- The claim as a function, so that it carries its own planner settings. Right after a bulk
-- enqueue, before the table is analyzed, the planner believes few tasks are ready and picks a
-- bitmap scan of the whole ready set plus a sort, on every claim (tens of milliseconds with
-- tens of thousands queued). Walking `tasks_ready_idx` in order and stopping at the limit is
-- right at any size, so the function rules the other plans out. (Not with enable_seqscan: the
-- paused-queues lookup must scan, and a disabled node's huge cost would also switch on JIT
-- compilation, hundreds of milliseconds per claim; JIT is off here for the same reason.)
create function seedcore_claim(
    worker text,
    how_many bigint,
    drift_from double precision,
    drift_below double precision,
    lease_seconds double precision,
    only_queues text[],
    skip_queues text[]
) returns setof tasks
language sql
set enable_bitmapscan = off
set enable_sort = off
set jit = off
as $$
    with picked as (
        select id
        from tasks
        where status in ('queued', 'retry')
          and run_at <= now()
          and drift_score >= drift_from and drift_score < drift_below
          and (only_queues is null or queue = any(only_queues))
          and not (queue = any(skip_queues))
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
        updated_at = now()
    from picked
    where t.id = picked.id
    returning t.*
$$;
