-- Dependencies and workflows: a task may wait (`blocked`) for other tasks to finish; a workflow
-- is a set of tasks created together, each named by a key.

alter table tasks drop constraint tasks_status_check;
alter table tasks add constraint tasks_status_check
    check (status in ('created', 'blocked', 'queued', 'running', 'retry',
                      'completed', 'failed', 'cancelled'));

alter table tasks add column depends_on uuid[] not null default '{}';
alter table tasks add column run_on_failure boolean not null default false;
alter table tasks add column workflow_id uuid;
alter table tasks add column workflow_key text;

-- A parent's waiting children: only blocked tasks are indexed, so the lookup each finished
-- batch makes costs next to nothing when no task waits.
create index tasks_blocked_parents_idx on tasks using gin (depends_on) where status = 'blocked';
-- A workflow's tasks.
create index tasks_workflow_idx on tasks (workflow_id, seq) where workflow_id is not null;

create table workflows (
    id         uuid primary key,
    name       text not null default '',
    created_at timestamptz not null default now()
);
-- The workflow list: newest first.
create index workflows_created_idx on workflows (created_at desc, id desc);

-- Moves on the blocked children of tasks that just reached a final status (`done`): `queued`
-- once every parent completed (with run_on_failure: once every parent is final), `cancelled`
-- with the parent named as soon as one failed or was cancelled. The update trigger calls it;
-- a cancelled child's own update calls it in turn, so cancellation reaches every descendant.
-- The rule is `model::task::waiting_on`.
create function seedcore_settle_dependents(done uuid[]) returns void language plpgsql as $$
begin
    -- Lock the waiting children first, in id order. A parent of theirs finishing in another
    -- transaction at the same moment waits here until this one commits, and the update below,
    -- a new statement with a new snapshot, then sees both parents' outcomes. (Creating a
    -- dependent locks its parents `for share` for the same reason.)
    perform 1 from tasks where status = 'blocked' and depends_on && done order by id for update;
    update tasks c
    set status = s.next_status,
        error = s.reason,
        finished_at = case when s.next_status = 'cancelled' then now() end,
        run_at = greatest(c.run_at, now()),
        updated_at = now()
    from (
        select k.id,
               case
                   when not k.run_on_failure and bad.parent is not null then 'cancelled'
                   when every.unfinished = 0 and (k.run_on_failure or every.failed = 0)
                       then 'queued'
               end as next_status,
               case when not k.run_on_failure and bad.parent is not null
                    then 'dependency ' || bad.parent end as reason
        from tasks k
        cross join lateral (
            select count(*) filter (where p.status not in ('completed', 'failed', 'cancelled'))
                       as unfinished,
                   count(*) filter (where p.status <> 'completed') as failed
            from unnest(k.depends_on) d(id) join tasks p on p.id = d.id
        ) every
        cross join lateral (
            select min(p.id::text || ' ' || p.status) as parent
            from unnest(k.depends_on) d(id) join tasks p on p.id = d.id
            where p.status in ('failed', 'cancelled')
        ) bad
        where k.status = 'blocked' and k.depends_on && done
    ) s
    where c.id = s.id and s.next_status is not null;
end $$;

-- The event trail keeps why a task was cancelled by its dependencies, and the children of
-- tasks that reached a final status are settled.
create or replace function seedcore_tasks_updated() returns trigger language plpgsql as $$
declare
    cancelled record;
    done uuid[];
begin
    insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id, error)
    select n.id,
           case
               when n.status = 'running' then 'claimed'
               when n.status = 'queued' and o.status = 'running' then
                   case when n.attempts < o.attempts then 'released' else 'rescued' end
               else n.status
           end,
           o.status, n.status, n.attempts, coalesce(n.worker_id, o.worker_id),
           case when n.status in ('failed', 'retry', 'queued')
                     or (n.status = 'cancelled' and o.status = 'blocked') then n.error end
    from new_rows n join old_rows o on o.id = n.id
    where n.status <> o.status;

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

    -- Last, so that a parent's event comes before its children's in the trail.
    select array_agg(n.id) into done
    from new_rows n join old_rows o on o.id = n.id
    where n.status in ('completed', 'failed', 'cancelled') and o.status <> n.status;
    if done is not null then
        perform seedcore_settle_dependents(done);
    end if;
    return null;
end $$;
