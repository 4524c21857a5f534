-- The audit trail records who acted on every event (see `model::actor` for the names, and
-- the PostgreSQL migration of the same name for the rule): `tasks.actor` is who made the
-- row's latest change, set by each statement that changes a task's status except the
-- workers' own writes (the claim clears it; null reads as the task's worker). A waiting child
-- its parent moves on names `system:dependencies`, or, cancelled because the parent its
-- error names was cancelled, whoever cancelled that parent.
-- The three triggers are created again in their first order, which is the order they fire in.

alter table tasks add column actor text;
alter table task_events add column actor text;

drop trigger tasks_inserted;
drop trigger tasks_status_changed;
drop trigger tasks_status_changed_settle;

create trigger tasks_inserted after insert on tasks
begin
    insert into task_events (task_id, at, kind, to_status, attempt, actor)
    values (new.id, new.created_at, 'created', new.status, new.attempts, new.actor);
end;

create trigger tasks_status_changed after update of status on tasks
when old.status <> new.status
begin
    insert into task_events (task_id, at, kind, from_status, to_status, attempt, worker_id, error,
                             actor)
    values (
        new.id,
        new.updated_at,
        case
            when new.status = 'running' then 'claimed'
            when new.status = 'queued' and old.status = 'running' then
                case when new.attempts < old.attempts then 'released' else 'rescued' end
            else new.status
        end,
        old.status,
        new.status,
        new.attempts,
        coalesce(new.worker_id, old.worker_id),
        case when new.status in ('failed', 'retry', 'queued')
                  or (new.status = 'cancelled' and old.status = 'blocked') then new.error end,
        coalesce(new.actor, 'worker:' || coalesce(new.worker_id, old.worker_id))
    );
end;

-- When a task reaches a final status its blocked children move on (the rule is
-- `model::task::waiting_on`): cancelled, naming the parent, once a parent failed or was
-- cancelled (unless they run on failure); queued once every parent completed (or, running on
-- failure, is final). A cancelled child fires this trigger in turn (the store turns on
-- recursive triggers), so cancellation reaches every descendant. The name sorts after
-- `tasks_status_changed`, so the parent's event comes first in the trail.
create trigger tasks_status_changed_settle after update of status on tasks
when new.status in ('completed', 'failed', 'cancelled') and old.status <> new.status
begin
    update tasks
    set status = case
            when not run_on_failure and exists (
                select 1 from task_dependencies d join tasks p on p.id = d.depends_on
                where d.task_id = tasks.id and p.status in ('failed', 'cancelled'))
            then 'cancelled' else 'queued' end,
        error = case when not run_on_failure then (
                select 'dependency ' || min(p.id || ' ' || p.status)
                from task_dependencies d join tasks p on p.id = d.depends_on
                where d.task_id = tasks.id and p.status in ('failed', 'cancelled')) end,
        finished_at = case
            when not run_on_failure and exists (
                select 1 from task_dependencies d join tasks p on p.id = d.depends_on
                where d.task_id = tasks.id and p.status in ('failed', 'cancelled'))
            then new.updated_at end,
        run_at = max(run_at, new.updated_at),
        updated_at = new.updated_at,
        actor = coalesce(case when not run_on_failure then (
                select case when p.status = 'cancelled' then p.actor end
                from task_dependencies d join tasks p on p.id = d.depends_on
                where d.task_id = tasks.id and p.status in ('failed', 'cancelled')
                order by p.id limit 1) end, 'system:dependencies')
    where status = 'blocked'
      and id in (select task_id from task_dependencies where depends_on = new.id)
      and ((not run_on_failure and exists (
                select 1 from task_dependencies d join tasks p on p.id = d.depends_on
                where d.task_id = tasks.id and p.status in ('failed', 'cancelled')))
           or not exists (
                select 1 from task_dependencies d join tasks p on p.id = d.depends_on
                where d.task_id = tasks.id
                  and (p.status not in ('completed', 'failed', 'cancelled')
                       or (not tasks.run_on_failure and p.status <> 'completed'))));
end;
