-- Finished tasks move out of the hot table into `task_history` once they are a few minutes
-- old (housekeeping, `seedcore_archive`), so that `tasks` holds what is live plus recent
-- history at any history size: every claim and completion changes the indexes of `tasks`
-- (a status change is never a HOT update, the ready index's predicate reads the status), and
-- those indexes would otherwise hold every task ever run (W4 in docs/benchmarks.md).
--
-- Invariants:
-- - A task is in exactly one of the two tables. Unfinished tasks are always in `tasks`;
--   `task_history` holds only completed, failed and cancelled ones.
-- - Reads that may find a finished task go through the view `all_tasks`; writes that change
--   a live task use `tasks`. `seedcore_unarchive` moves a task back before it is run again.
-- - A move (either way) is not a change: with `seedcore.moving` set for the transaction, the
--   triggers write no event and no counter delta, and the key gate lets the row through.
-- - An idempotency key is claimed in `task_keys`, which never moves, so a create cannot miss
--   a key whose task is being moved at that moment. The key stays until the task is pruned.
-- - `task_history` has the columns of `tasks` in the same order (rows move with `select *`);
--   a migration that adds a column to one adds it to both and recreates `all_tasks`. The same
--   holds for `task_events`, `task_event_history` and `all_task_events`.

create table task_history (like tasks including defaults including constraints);
alter table task_history add primary key (id);
-- Rows written straight into the history (a bulk load of old tasks) take their `seq` where
-- new tasks do; moved rows keep theirs.
alter table task_history alter column seq set default nextval('tasks_seq_seq');
create index task_history_created_idx on task_history (created_at desc, id desc);
create index task_history_status_created_idx on task_history (status, created_at desc, id desc);
create index task_history_workflow_idx on task_history (workflow_id, seq)
    where workflow_id is not null;
create unique index task_history_idempotency_idx on task_history (idempotency_key)
    where idempotency_key is not null;
alter table task_history add constraint task_history_finished
    check (status in ('completed', 'failed', 'cancelled'));

-- The events of moved tasks move with them: `task_events` is indexed by task id, and new tasks'
-- first events would otherwise land on random pages of an index of every event ever written.
create table task_event_history (like task_events including defaults);
alter table task_event_history add primary key (seq);
create index task_event_history_task_idx on task_event_history (task_id, seq);

create view all_task_events as
    select * from task_events
    union all
    select * from task_event_history;

create view all_tasks as
    select * from tasks
    union all
    select * from task_history;

-- True while the current transaction moves rows between the two tables.
create function seedcore_moving() returns boolean
language sql stable as $$
    select coalesce(current_setting('seedcore.moving', true), '') = 'on'
$$;

create table task_keys (
    key     text primary key,
    task_id uuid not null
);
insert into task_keys (key, task_id)
select idempotency_key, id from tasks where idempotency_key is not null;

-- A row whose key another task holds is skipped, as `on conflict do nothing` would skip it;
-- a create racing another with the same key waits for it here, whichever table that task
-- is in by then.
create function seedcore_claim_key() returns trigger
language plpgsql as $$
begin
    if seedcore_moving() then
        return new;
    end if;
    insert into task_keys (key, task_id) values (new.idempotency_key, new.id)
    on conflict (key) do nothing;
    if found then
        return new;
    end if;
    return null;
end $$;

create trigger tasks_claim_key before insert on tasks
    for each row when (new.idempotency_key is not null)
    execute function seedcore_claim_key();

create or replace function seedcore_tasks_inserted() returns trigger
language plpgsql as $$
begin
    if seedcore_moving() then
        return null;
    end if;
    insert into task_events (task_id, kind, to_status, attempt)
    select n.id, 'created', n.status, n.attempts from new_rows n;
    insert into counter_deltas (kind, a, b, n)
    select 'tasks', queue, status, count(*) from new_rows group by queue, status;
    return null;
end $$;

create or replace function seedcore_tasks_deleted() returns trigger
language plpgsql as $$
begin
    if seedcore_moving() then
        return null;
    end if;
    insert into counter_deltas (kind, a, b, n)
    select 'tasks', queue, status, -count(*) from old_rows group by queue, status;
    return null;
end $$;

create or replace function seedcore_history_counted() returns trigger
language plpgsql as $$
begin
    if seedcore_moving() then
        return null;
    end if;
    if tg_op = 'INSERT' then
        insert into counter_deltas (kind, a, b, n)
        select 'tasks', queue, status, count(*) from new_rows group by queue, status;
    else
        insert into counter_deltas (kind, a, b, n)
        select 'tasks', queue, status, -count(*) from old_rows group by queue, status;
    end if;
    return null;
end $$;

create trigger task_history_inserted after insert on task_history
    referencing new table as new_rows
    for each statement execute function seedcore_history_counted();
create trigger task_history_deleted after delete on task_history
    referencing old table as old_rows
    for each statement execute function seedcore_history_counted();

-- Moves up to `how_many` tasks that finished before `finished_before` into the history, with
-- their events, in no particular order (all of them go soon); a task a blocked task waits on stays, and rows
-- another process is moving or changing are skipped. Returns how many moved. The bound on
-- `created_at` always holds for such a task and lets the scan use the status index alone.
create function seedcore_archive(finished_before timestamptz, how_many bigint) returns bigint
language plpgsql as $$
declare
    moved bigint;
begin
    perform set_config('seedcore.moving', 'on', true);
    with doomed as (
        select t.id
        from tasks t
        where t.status in ('completed', 'failed', 'cancelled')
          and t.finished_at < finished_before
          and t.created_at < finished_before
          and not exists (
              select 1 from tasks c where c.status = 'blocked' and c.depends_on @> array[t.id])
        limit how_many
        for update skip locked
    ), gone as (
        delete from tasks where id in (select id from doomed) returning *
    ), events as (
        delete from task_events where task_id in (select id from doomed) returning *
    ), events_moved as (
        insert into task_event_history select * from events
    ), tasks_moved as (
        insert into task_history select * from gone returning 1
    )
    select count(*) into moved from tasks_moved;
    perform set_config('seedcore.moving', '', true);
    return moved;
end $$;

-- Moves the task back into the hot table (before it is run again); false when it is not in
-- the history. Its events stay where they are (reads take both tables).
create function seedcore_unarchive(task uuid) returns boolean
language plpgsql as $$
declare
    moved bigint;
begin
    -- Waits out a move of this task into the history in progress; the delete below, a new
    -- statement, then sees where it went.
    perform 1 from tasks where id = task for update;
    perform set_config('seedcore.moving', 'on', true);
    with gone as (
        delete from task_history where id = task returning *
    )
    insert into tasks overriding system value select * from gone;
    get diagnostics moved = row_count;
    perform set_config('seedcore.moving', '', true);
    return moved > 0;
end $$;

-- Parents are read wherever they are (a finished one may have moved to the history).
create or replace function seedcore_settle_dependents(done uuid[]) returns void
language plpgsql as $$
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
            from unnest(k.depends_on) d(id) join all_tasks p on p.id = d.id
        ) every
        cross join lateral (
            select min(p.id::text || ' ' || p.status) as parent
            from unnest(k.depends_on) d(id) join all_tasks p on p.id = d.id
            where p.status in ('failed', 'cancelled')
        ) bad
        where k.status = 'blocked' and k.depends_on && done
    ) s
    where c.id = s.id and s.next_status is not null;
end $$;

create or replace function seedcore_recount() returns void
language plpgsql as $$
begin
    lock table tasks, task_history, facts in share mode;
    delete from counter_deltas;
    delete from counters;
    insert into counters (kind, a, b, n)
    select 'tasks', queue, status, count(*) from all_tasks group by queue, status;
    insert into counters (kind, a, b, n) select 'facts', '', '', count(*) from facts;
    insert into counters (kind, a, b, n)
    select 'facts', tag, '', count(*)
    from facts, lateral (select distinct unnest(tags) as tag) t
    group by tag;
end $$;
