-- Puts a task back in the queue with its attempt uncounted (a graceful stop interrupted it),
-- only while its lease token ?3 is current. ?1 is now.
update tasks
set status = 'queued',
    attempts = max(attempts - 1, 0),
    run_at = ?1,
    worker_id = null,
    lease_token = null,
    lease_expires_at = null,
    started_at = null,
    updated_at = ?1
where id = ?2 and lease_token = ?3 and status = 'running'
