-- Deletes the finished tasks among $1, wherever they are (hot table or history), with their
-- events and idempotency keys; a task a blocked task still waits on is kept (its outcome
-- decides the child's), as pruning keeps it. Returns the ids deleted.
with doomed as (
    select t.id, t.idempotency_key
    from tasks t
    where t.id = any($1)
      and t.status in ('completed', 'failed', 'cancelled')
      and not exists (
          select 1 from tasks c where c.status = 'blocked' and c.depends_on @> array[t.id])
    order by t.id
    for update
), doomed_history as (
    select h.id, h.idempotency_key
    from task_history h
    where h.id = any($1)
      and not exists (
          select 1 from tasks c where c.status = 'blocked' and c.depends_on @> array[h.id])
    order by h.id
    for update
), every_doomed as (
    select id, idempotency_key from doomed
    union all
    select id, idempotency_key from doomed_history
), events as (
    delete from task_events where task_id in (select id from every_doomed)
), old_events as (
    delete from task_event_history where task_id in (select id from every_doomed)
), keys as (
    delete from task_keys where key in (select idempotency_key from every_doomed)
), gone as (
    delete from tasks where id in (select id from doomed) returning id
), gone_history as (
    delete from task_history where id in (select id from doomed_history) returning id
)
select id from gone
union all
select id from gone_history
