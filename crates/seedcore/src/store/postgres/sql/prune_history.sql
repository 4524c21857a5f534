-- `prune.sql` for the history: deletes up to $2 archived tasks that finished before $1, oldest
-- first, with their events and idempotency keys, keeping those a blocked task waits on.
with doomed as (
    select h.id, h.idempotency_key
    from task_history h
    where h.finished_at < $1
      and not exists (
          select 1 from tasks c where c.status = 'blocked' and c.depends_on @> array[h.id])
    order by h.created_at, h.id
    limit $2
    for update skip locked
), events as (
    delete from task_events where task_id in (select id from doomed)
), old_events as (
    delete from task_event_history where task_id in (select id from doomed)
), keys as (
    delete from task_keys where key in (select idempotency_key from doomed)
)
delete from task_history where id in (select id from doomed)
