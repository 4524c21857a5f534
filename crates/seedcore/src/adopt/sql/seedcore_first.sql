-- seedcore's first migration (migrations/postgres/20261128000001_tasks_and_facts.sql) without
-- its two create table statements: adoption has just turned the original's tasks and facts
-- into those tables. Keep it in step with that migration, statement for statement.

create extension if not exists pg_trgm;


-- The task list: newest first, optionally by status.
create index tasks_created_idx on tasks (created_at desc, id desc);
create index tasks_status_created_idx on tasks (status, created_at desc, id desc);
-- The claim: only ready tasks are indexed, so finished ones never slow it down.
create index tasks_ready_idx on tasks (run_at, id) where status in ('queued', 'retry');
-- The rescue of expired leases.
create index tasks_lease_idx on tasks (lease_expires_at) where status = 'running';

-- Every status change of a task, appended by the triggers below.
create table task_events (
    seq         bigint generated always as identity primary key,
    task_id     uuid not null,
    at          timestamptz not null default now(),
    kind        text not null,
    from_status text,
    to_status   text not null,
    attempt     integer not null,
    worker_id   text,
    error       text
);
create index task_events_task_idx on task_events (task_id, seq);

-- Statement-level triggers see all rows of a batch at once: one insert into task_events and at
-- most one NOTIFY per statement, however many tasks a claim or a bulk insert touches.
create function seedcore_tasks_inserted() returns trigger language plpgsql as $$
begin
    insert into task_events (task_id, kind, to_status, attempt)
    select n.id, 'created', n.status, n.attempts from new_rows n;
    if exists (select 1 from new_rows where status in ('queued', 'retry')) then
        perform pg_notify('seedcore_tasks', '');
    end if;
    return null;
end $$;

create function seedcore_tasks_updated() returns trigger language plpgsql as $$
declare
    cancelled record;
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
           case when n.status in ('failed', 'retry', 'queued') then n.error end
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
    return null;
end $$;

create trigger tasks_inserted after insert on tasks
    referencing new table as new_rows
    for each statement execute function seedcore_tasks_inserted();

create trigger tasks_updated after update on tasks
    referencing old table as old_rows new table as new_rows
    for each statement execute function seedcore_tasks_updated();


-- The fact list: newest first.
create index facts_created_idx on facts (created_at desc, id desc);
-- `tag=`: array containment.
create index facts_tags_idx on facts using gin (tags);
-- `q=`: case-insensitive substring of the text or of the metadata's JSON text.
create index facts_text_trgm_idx on facts using gin (text gin_trgm_ops);
create index facts_meta_trgm_idx on facts using gin ((meta_data::text) gin_trgm_ops);
