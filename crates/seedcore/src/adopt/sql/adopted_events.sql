-- The audit trail's first entry for every adopted task: the status it had in the original
-- service, the one it has now, and why they differ.
insert into task_events (task_id, kind, from_status, to_status, attempt, worker_id, error)
select t.id, 'adopted', a.was, t.status, t.attempts, t.worker_id, a.note
from adopted_tasks a
join tasks t on t.id = a.id
