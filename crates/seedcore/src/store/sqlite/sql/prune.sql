-- Deletes up to ?2 tasks that finished before ?1, oldest first; a task a blocked task still
-- waits on is kept. The store deletes their events and edges in the same transaction (see
-- `prune_finished`), from the ids this returns.
delete from tasks
where id in (
    select t.id
    from tasks t
    where t.status in ('completed', 'failed', 'cancelled')
      and t.finished_at < ?1
      and not exists (
          select 1 from task_dependencies d join tasks c on c.id = d.task_id
          where d.depends_on = t.id and c.status = 'blocked')
    order by t.created_at, t.id
    limit ?2
)
returning id
