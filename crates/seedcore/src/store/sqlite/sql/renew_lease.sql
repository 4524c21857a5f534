-- Extends one lease to ?1 while its token ?3 is current.
update tasks
set lease_expires_at = ?1
where id = ?2 and lease_token = ?3 and status = 'running'
