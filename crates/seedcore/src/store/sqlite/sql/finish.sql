-- Records how one attempt ended, only while its lease token ?7 is current. ?5 is now; ?4 the
-- retry time (null unless the status is 'retry').
update tasks
set status = ?1,
    result = ?2,
    error = ?3,
    run_at = coalesce(?4, run_at),
    finished_at = case when ?1 = 'retry' then null else ?5 end,
    lease_token = null,
    lease_expires_at = null,
    updated_at = ?5
where id = ?6 and lease_token = ?7 and status = 'running'
