-- Records a batch of action ?1: ?2 tasks matched, ?3 of them changed, the cursor moved to ?4
-- (kept when null), completed when ?5; ?6 is now, ?7 the renewed lease's end.
update task_actions
set matched = matched + ?2,
    done = done + ?3,
    skipped = skipped + (?2 - ?3),
    cursor = coalesce(?4, cursor),
    state = case when ?5 then 'completed' else state end,
    finished_at = case when ?5 then ?6 end,
    lease_expires_at = case when ?5 then null else ?7 end
where id = ?1
returning *
