-- Returns tasks whose lease expired (their worker stopped renewing it) to the queue, or fails
-- them when no attempt is left. Skips rows another process is rescuing at the same moment.
-- Returns each rescued task's queue and type (for the attempt metrics).
with expired as (
    select id
    from tasks
    where status = 'running' and lease_expires_at < now()
    order by lease_expires_at
    limit 1000
    for update skip locked
)
update tasks t
set status = case when t.attempts >= t.max_attempts then 'failed' else 'queued' end,
    error = 'lease expired: worker ' || coalesce(t.worker_id, '?')
            || ' stopped renewing it (attempt ' || t.attempts || ')',
    finished_at = case when t.attempts >= t.max_attempts then now() end,
    run_at = now(),
    lease_token = null,
    lease_expires_at = null,
    updated_at = now(),
    actor = 'system:lease-expired'
from expired
where t.id = expired.id
returning t.queue, t.type
