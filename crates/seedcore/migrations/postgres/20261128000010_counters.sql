-- Exact totals without counting rows: tasks per (queue, status), facts in all and per tag.
--
-- Every change appends its deltas to `counter_deltas` in the changing transaction (statement
-- triggers, one insert per statement), so totals are exact under any concurrency and no row
-- is a hot spot that writers would queue on. The maintenance loop folds the deltas into
-- `counters` now and then (`seedcore_fold_counters`); a total is its counter plus the deltas
-- not yet folded, read in one statement.
--
-- kind 'tasks': a = queue, b = status. kind 'facts': a = '' (all facts) or the tag, b = ''.

create table counters (
    kind text not null,
    a    text not null,
    b    text not null,
    n    bigint not null,
    primary key (kind, a, b)
);

create table counter_deltas (
    kind text not null,
    a    text not null,
    b    text not null,
    n    bigint not null
);
create index counter_deltas_key_idx on counter_deltas (kind, a, b);

-- Rebuilds every counter from the rows: at this migration, and by hand after rows were
-- written with triggers disabled (`session_replication_role = replica`, a restore without
-- triggers). Writers wait for it; readers do not.
create function seedcore_recount() returns void language plpgsql as $$
begin
    lock table tasks, facts in share mode;
    delete from counter_deltas;
    delete from counters;
    insert into counters (kind, a, b, n)
    select 'tasks', queue, status, count(*) from tasks group by queue, status;
    insert into counters (kind, a, b, n) select 'facts', '', '', count(*) from facts;
    insert into counters (kind, a, b, n)
    select 'facts', tag, '', count(*)
    from facts, lateral (select distinct unnest(tags) as tag) t
    group by tag;
end $$;

select seedcore_recount();

-- Folds every delta into its counter; safe to run from several processes at once (each
-- delta is deleted, and so counted, exactly once).
create function seedcore_fold_counters() returns bigint language sql as $$
    with folded as (
        delete from counter_deltas returning kind, a, b, n
    ), summed as (
        insert into counters (kind, a, b, n)
        select kind, a, b, sum(n) from folded group by kind, a, b
        on conflict (kind, a, b) do update set n = counters.n + excluded.n
        returning 1
    )
    select count(*) from summed
$$;

create or replace function seedcore_tasks_inserted() returns trigger language plpgsql as $$
begin
    insert into task_events (task_id, kind, to_status, attempt)
    select n.id, 'created', n.status, n.attempts from new_rows n;
    insert into counter_deltas (kind, a, b, n)
    select 'tasks', queue, status, count(*) from new_rows group by queue, status;
    return null;
end $$;

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

create function seedcore_tasks_deleted() returns trigger language plpgsql as $$
begin
    insert into counter_deltas (kind, a, b, n)
    select 'tasks', queue, status, -count(*) from old_rows group by queue, status;
    return null;
end $$;

create trigger tasks_deleted after delete on tasks
    referencing old table as old_rows
    for each statement execute function seedcore_tasks_deleted();

-- Facts: +1 / -1 for all facts and for each tag a fact gains or loses (a tag repeated in one
-- fact counts once, as `tags @> array[tag]` matches it once).
create function seedcore_facts_counted() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into counter_deltas (kind, a, b, n)
        select 'facts', '', '', count(*) from new_rows having count(*) > 0
        union all
        select 'facts', tag, '', count(*)
        from new_rows, lateral (select distinct unnest(tags) as tag) t group by tag;
    elsif tg_op = 'DELETE' then
        insert into counter_deltas (kind, a, b, n)
        select 'facts', '', '', -count(*) from old_rows having count(*) > 0
        union all
        select 'facts', tag, '', -count(*)
        from old_rows, lateral (select distinct unnest(tags) as tag) t group by tag;
    else
        insert into counter_deltas (kind, a, b, n)
        select 'facts', tag, '', sum(n) from (
            select tag, 1 as n from new_rows, lateral (select distinct unnest(tags) as tag) t
            union all
            select tag, -1 from old_rows, lateral (select distinct unnest(tags) as tag) t
        ) moved
        group by tag
        having sum(n) <> 0;
    end if;
    return null;
end $$;

create trigger facts_inserted_counted after insert on facts
    referencing new table as new_rows
    for each statement execute function seedcore_facts_counted();
create trigger facts_updated_counted after update on facts
    referencing old table as old_rows new table as new_rows
    for each statement execute function seedcore_facts_counted();
create trigger facts_deleted_counted after delete on facts
    referencing old table as old_rows
    for each statement execute function seedcore_facts_counted();
