-- Dependencies and workflows, as in the PostgreSQL schema. SQLite cannot change a check
-- constraint in place, so the tasks table is rebuilt with `blocked` among the statuses; rowids
-- are copied, since they are the arrival order the claim walks.

create table tasks_rebuilt (
    id                text primary key not null,
    type              text not null,
    description       text not null default '',
    params            text not null default '{}',
    domain            text,
    drift_score       real not null default 0,
    status            text not null default 'created'
                      check (status in ('created', 'blocked', 'queued', 'running', 'retry',
                                        'completed', 'failed', 'cancelled')),
    result            text,
    error             text,
    created_at        text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at        text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    attempts          integer not null default 0,
    max_attempts      integer not null default 3 check (max_attempts >= 1),
    timeout_seconds   real,
    run_at            text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    started_at        text,
    finished_at       text,
    worker_id         text,
    lease_token       text,
    lease_expires_at  text,
    attached_fact_ids text not null default '[]' check (json_type(attached_fact_ids) = 'array'),
    queue             text not null default 'default',
    priority          integer not null default 0,
    idempotency_key   text,
    -- A JSON array of the parents' ids; task_dependencies holds the same edges for lookups.
    depends_on        text not null default '[]' check (json_type(depends_on) = 'array'),
    run_on_failure    integer not null default 0,
    workflow_id       text,
    workflow_key      text
) strict;

insert into tasks_rebuilt (rowid, id, type, description, params, domain, drift_score, status,
                           result, error, created_at, updated_at, attempts, max_attempts,
                           timeout_seconds, run_at, started_at, finished_at, worker_id,
                           lease_token, lease_expires_at, attached_fact_ids, queue, priority,
                           idempotency_key)
select rowid, id, type, description, params, domain, drift_score, status, result, error,
       created_at, updated_at, attempts, max_attempts, timeout_seconds, run_at, started_at,
       finished_at, worker_id, lease_token, lease_expires_at, attached_fact_ids, queue,
       priority, idempotency_key
from tasks;

drop table tasks;
alter table tasks_rebuilt rename to tasks;

create index tasks_created_idx on tasks (created_at desc, id desc);
create index tasks_status_created_idx on tasks (status, created_at desc, id desc);
create index tasks_ready_idx on tasks (priority desc, run_at)
    where status in ('queued', 'retry');
create index tasks_lease_idx on tasks (lease_expires_at) where status = 'running';
create unique index tasks_idempotency_idx on tasks (idempotency_key)
    where idempotency_key is not null;
create index tasks_workflow_idx on tasks (workflow_id) where workflow_id is not null;

-- Each edge child -> parent; looked up by parent when the parent finishes.
create table task_dependencies (
    task_id    text not null,
    depends_on text not null,
    primary key (depends_on, task_id)
) strict, without rowid;
create index task_dependencies_child_idx on task_dependencies (task_id);

create table workflows (
    id         text primary key not null,
    name       text not null default '',
    created_at text not null
) strict;
create index workflows_created_idx on workflows (created_at desc, id desc);

create trigger tasks_inserted after insert on tasks
begin
    insert into task_events (task_id, at, kind, to_status, attempt)
    values (new.id, new.created_at, 'created', new.status, new.attempts);
end;

create trigger tasks_status_changed after update of status on tasks
when old.status <> new.status
begin
    insert into task_events (task_id, at, kind, from_status, to_status, attempt, worker_id, error)
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
                  or (new.status = 'cancelled' and old.status = 'blocked') then new.error end
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
        updated_at = new.updated_at
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
