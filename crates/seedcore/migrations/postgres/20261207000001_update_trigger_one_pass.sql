-- The update trigger in one pass over the changed rows, and the settling of dependents only
-- when some task waits on a parent.
--
-- Every claim and every completion fires this trigger, so its fixed cost is paid twice per
-- batch. Before, it joined `new_rows` to `old_rows` five times (events, counter deltas, the
-- wake-up, the cancellations, the finished ids); now the changed rows are joined once, the
-- event rows and the counter deltas are written by one statement, and the same statement
-- gathers what the rest needs. What it writes is unchanged: the same event rows with the same
-- kinds, actors and errors, the same deltas, the same notifications.
--
-- `seedcore_settle_dependents` locked the waiting children of the finished tasks through the
-- GIN index of blocked tasks' parents, even when no task is blocked at all (≈0.4 ms per
-- completion batch). A task can only be settled while it is `blocked`, so the trigger first
-- asks the status index whether any blocked task exists, a single descent, and calls it only
-- then. The probe runs in a new statement, as the lock did, so it sees what the lock saw: a
-- dependent created at the same moment locks its parents `for share`, so the parent's update
-- waited for that insert to commit before this trigger runs, and the probe sees the child.

create or replace function seedcore_tasks_updated() returns trigger language plpgsql as $$
declare
    requeued boolean;
    cancelled uuid[];
    done uuid[];
    cancelled_id uuid;
begin
    with changed as materialized (
        select n.id, n.status, n.attempts, n.worker_id, n.error, n.actor, n.queue,
               o.status as old_status, o.attempts as old_attempts,
               o.worker_id as old_worker_id, o.queue as old_queue
        from new_rows n join old_rows o on o.id = n.id
        where n.status <> o.status or n.queue <> o.queue
    ),
    events as (
        insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id,
                                 error, actor)
        select c.id,
               case
                   when c.status = 'running' then 'claimed'
                   when c.status = 'queued' and c.old_status = 'running' then
                       case when c.attempts < c.old_attempts then 'released' else 'rescued' end
                   else c.status
               end,
               c.old_status, c.status, c.attempts, coalesce(c.worker_id, c.old_worker_id),
               case when c.status in ('failed', 'retry', 'queued')
                         or (c.status = 'cancelled' and c.old_status = 'blocked') then c.error end,
               coalesce(c.actor, 'worker:' || coalesce(c.worker_id, c.old_worker_id))
        from changed c
        where c.status <> c.old_status
    ),
    deltas as (
        insert into counter_deltas (kind, a, b, n)
        select 'tasks', v.queue, v.status, sum(v.n)
        from changed c
        cross join lateral (values (c.queue, c.status, 1), (c.old_queue, c.old_status, -1))
            v(queue, status, n)
        group by v.queue, v.status
        having sum(v.n) <> 0
    )
    select coalesce(bool_or(c.status in ('queued', 'retry')
                            and c.old_status not in ('queued', 'retry')), false),
           array_agg(c.id) filter (where c.status = 'cancelled' and c.old_status = 'running'),
           array_agg(c.id) filter (where c.status in ('completed', 'failed', 'cancelled')
                                     and c.old_status <> c.status)
    into requeued, cancelled, done
    from changed c;

    if requeued then
        perform pg_notify('seedcore_tasks', '');
    end if;
    if cancelled is not null then
        foreach cancelled_id in array cancelled loop
            perform pg_notify('seedcore_cancel', cancelled_id::text);
        end loop;
    end if;
    if done is not null and exists (select 1 from tasks where status = 'blocked') then
        perform seedcore_settle_dependents(done);
    end if;
    return null;
end $$;
