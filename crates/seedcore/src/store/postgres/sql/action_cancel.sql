-- Cancels the tasks among $1 that are still in a status of $2 (`TaskStatus::CANCELLABLE`), as
-- a single cancel does, locking them in id order; returns each with the status it had (the
-- trigger tells other processes of the running ones, the caller its own).
with hit as (
    select id, status from tasks
    where id = any($1) and status = any($2)
    order by id
    for update
)
update tasks t
set status = 'cancelled', finished_at = now(), lease_token = null,
    lease_expires_at = null, updated_at = now()
from hit
where t.id = hit.id
returning t.id, hit.status
