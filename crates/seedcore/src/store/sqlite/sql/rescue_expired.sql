-- Returns tasks whose lease expired before ?1 (now: their worker stopped renewing it) to the
-- queue, or fails them when no attempt is left. Set expressions read the row as it was. The
-- partial index of running tasks answers the subquery in expiry order (see claim.sql).
update tasks
set status = case when attempts >= max_attempts then 'failed' else 'queued' end,
    error = 'lease expired: worker ' || coalesce(worker_id, '?')
            || ' stopped renewing it (attempt ' || attempts || ')',
    finished_at = case when attempts >= max_attempts then ?1 end,
    run_at = ?1,
    lease_token = null,
    lease_expires_at = null,
    updated_at = ?1,
    actor = 'system:lease-expired'
where id in (
    select id
    from tasks indexed by tasks_lease_idx
    where status = 'running' and lease_expires_at < ?1
    order by lease_expires_at
    limit 1000
)
returning status, queue, type
