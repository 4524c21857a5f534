-- Up to ?2 events after ?1 in `seq` order, each with its task's type, queue and workflow
-- (null when the task was deleted since).
select e.seq, e.task_id, e.at, e.kind, e.from_status, e.to_status, e.attempt, e.error,
       t.type as task_type, t.queue, t.workflow_id
from (
    select * from task_events where seq > ?1 order by seq limit ?2
) e
left join tasks t on t.id = e.task_id
order by e.seq
