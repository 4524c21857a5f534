-- Deletes the finished tasks among ?1 (a JSON array of ids); a task a blocked task still
-- waits on is kept, as pruning keeps it. The store deletes their events and edges in the same
-- transaction, from the ids this returns.
delete from tasks
where id in (select value from json_each(?1))
  and status in ('completed', 'failed', 'cancelled')
  and not exists (
      select 1 from task_dependencies d join tasks c on c.id = d.task_id
      where d.depends_on = tasks.id and c.status = 'blocked')
returning id
