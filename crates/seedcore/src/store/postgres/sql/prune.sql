-- Deletes up to $2 tasks of the hot table that finished before $1, oldest first, with their
-- events and idempotency keys; a task a blocked task still waits on is kept (its outcome
-- decides the child's). Walks the creation index from the oldest task, so no index is kept on
-- finished_at for this alone; rows another process is pruning or moving are skipped.
with doomed as (
    select t.id, t.idempotency_key
    from tasks t
    where t.status in ('completed', 'failed', 'cancelled')
      and t.finished_at < $1
      and not exists (
          select 1 from tasks c where c.status = 'blocked' and c.depends_on @> array[t.id])
    order by t.created_at, t.id
    limit $2
    for update skip locked
), events as (
    delete from task_events where task_id in (select id from doomed)
), old_events as (
    delete from task_event_history where task_id in (select id from doomed)
), keys as (
    delete from task_keys where key in (select idempotency_key from doomed)
)
delete from tasks where id in (select id from doomed)
