-- Records a batch of action $1: $2 tasks matched, $3 of them changed, the cursor moved to $4
-- (kept when null), completed when $5; the lease of $6 renewed for $7 seconds.
update task_actions
set matched = matched + $2,
    done = done + $3,
    skipped = skipped + ($2 - $3),
    cursor = coalesce($4, cursor),
    state = case when $5 then 'completed' else state end,
    finished_at = case when $5 then now() end,
    lease_expires_at = case when $5 then null else now() + $7 * interval '1 second' end
where id = $1 and owner = $6 and state = 'running'
returning *
