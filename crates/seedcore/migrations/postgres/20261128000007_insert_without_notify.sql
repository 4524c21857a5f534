-- New tasks no longer send NOTIFY from the insert trigger: a transaction that notifies takes a
-- cluster-wide lock at commit and holds it through its WAL flush, so every enqueue committed
-- one at a time. The store now announces new work itself, outside the inserting transaction,
-- at most one NOTIFY in flight per process (see PgStore), and wakes its own process at once.
create or replace function seedcore_tasks_inserted() returns trigger language plpgsql as $$
begin
    insert into task_events (task_id, kind, to_status, attempt)
    select n.id, 'created', n.status, n.attempts from new_rows n;
    return null;
end $$;
