-- The audit trail records who acted on every event (see `model::actor` for the names).
--
-- `tasks.actor` is who made the row's latest change: each statement that changes a task's
-- status sets it (the API to `token:<name>` or `anonymous`, a schedule's fire to
-- `schedule:<name>`, the rescue of an expired lease to `system:lease-expired`), except the
-- workers' own writes: the claim clears it, and the triggers read null as the task's worker.
-- A waiting child its parent moves on names `system:dependencies`, unless it is cancelled
-- because that parent (the one its error names) was cancelled: then it names whoever
-- cancelled the parent, as it would had one statement cancelled both (a workflow's cancel). So a name never outlives the change it was written for, and the
-- hot completion statement writes nothing more than before.
--
-- `task_history` and `task_event_history` gain the same column at the same position as
-- `tasks` and `task_events` (rows move with `select *`), and both views are recreated.

alter table tasks add column actor text;
alter table task_history add column actor text;
create or replace view all_tasks as
    select * from tasks
    union all
    select * from task_history;

alter table task_events add column actor text;
alter table task_event_history add column actor text;
create or replace view all_task_events as
    select * from task_events
    union all
    select * from task_event_history;

create or replace function seedcore_tasks_inserted() returns trigger
language plpgsql as $$
begin
    if seedcore_moving() then
        return null;
    end if;
    insert into task_events (task_id, kind, to_status, attempt, actor)
    select n.id, 'created', n.status, n.attempts, n.actor from new_rows n;
    insert into counter_deltas (kind, a, b, n)
    select 'tasks', queue, status, count(*) from new_rows group by queue, status;
    return null;
end $$;

create or replace function seedcore_tasks_updated() returns trigger language plpgsql as $$
declare
    cancelled record;
    done uuid[];
begin
    insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id, error,
                             actor)
    select n.id,
           case
               when n.status = 'running' then 'claimed'
               when n.status = 'queued' and o.status = 'running' then
                   case when n.attempts < o.attempts then 'released' else 'rescued' end
               else n.status
           end,
           o.status, n.status, n.attempts, coalesce(n.worker_id, o.worker_id),
           case when n.status in ('failed', 'retry', 'queued')
                     or (n.status = 'cancelled' and o.status = 'blocked') then n.error end,
           coalesce(n.actor, 'worker:' || coalesce(n.worker_id, o.worker_id))
    from new_rows n join old_rows o on o.id = n.id
    where n.status <> o.status;

    insert into counter_deltas (kind, a, b, n)
    select 'tasks', v.queue, v.status, sum(v.n)
    from new_rows n join old_rows o on o.id = n.id
    cross join lateral (values (n.queue, n.status, 1), (o.queue, o.status, -1)) v(queue, status, n)
    where n.status <> o.status or n.queue <> o.queue
    group by v.queue, v.status
    having sum(v.n) <> 0;

    if exists (select 1 from new_rows n join old_rows o on o.id = n.id
               where n.status in ('queued', 'retry') and o.status not in ('queued', 'retry')) then
        perform pg_notify('seedcore_tasks', '');
    end if;
    for cancelled in
        select n.id from new_rows n join old_rows o on o.id = n.id
        where n.status = 'cancelled' and o.status = 'running'
    loop
        perform pg_notify('seedcore_cancel', cancelled.id::text);
    end loop;

    select array_agg(n.id) into done
    from new_rows n join old_rows o on o.id = n.id
    where n.status in ('completed', 'failed', 'cancelled') and o.status <> n.status;
    if done is not null then
        perform seedcore_settle_dependents(done);
    end if;
    return null;
end $$;

create or replace function seedcore_settle_dependents(done uuid[]) returns void
language plpgsql as $$
begin
    -- Lock the waiting children first, in id order. A parent of theirs finishing in another
    -- transaction at the same moment waits here until this one commits, and the update below,
    -- a new statement with a new snapshot, then sees both parents' outcomes. (Creating a
    -- dependent locks its parents `for share` for the same reason.)
    perform 1 from tasks where status = 'blocked' and depends_on && done order by id for update;
    -- Most finished tasks have no waiting child: then there is nothing to settle.
    if not found then
        return;
    end if;
    update tasks c
    set status = s.next_status,
        error = s.reason,
        finished_at = case when s.next_status = 'cancelled' then now() end,
        run_at = greatest(c.run_at, now()),
        updated_at = now(),
        actor = coalesce(s.cancelled_by, 'system:dependencies')
    from (
        select k.id,
               case
                   when not k.run_on_failure and bad.parent is not null then 'cancelled'
                   when every.unfinished = 0 and (k.run_on_failure or every.failed = 0)
                       then 'queued'
               end as next_status,
               case when not k.run_on_failure and bad.parent is not null
                    then 'dependency ' || bad.parent end as reason,
               case when not k.run_on_failure and bad.parent is not null
                    then bad.cancelled_by end as cancelled_by
        from tasks k
        cross join lateral (
            select count(*) filter (where p.status not in ('completed', 'failed', 'cancelled'))
                       as unfinished,
                   count(*) filter (where p.status <> 'completed') as failed
            from unnest(k.depends_on) d(id) join all_tasks p on p.id = d.id
        ) every
        cross join lateral (
            select min(p.id::text || ' ' || p.status) as parent,
                   (array_agg(case when p.status = 'cancelled' then p.actor end
                              order by p.id::text))[1] as cancelled_by
            from unnest(k.depends_on) d(id) join all_tasks p on p.id = d.id
            where p.status in ('failed', 'cancelled')
        ) bad
        where k.status = 'blocked' and k.depends_on && done
    ) s
    where c.id = s.id and s.next_status is not null;
end $$;

-- The claim clears the actor: what the worker does next is the worker's.
create or replace function seedcore_claim(
    worker text,
    how_many bigint,
    drift_from double precision,
    drift_below double precision,
    lease_seconds double precision,
    only_queues text[],
    skip_queues text[]
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
