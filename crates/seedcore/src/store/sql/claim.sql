-- Claims up to $2 ready tasks for worker $1 in one statement. Only the partial ready index is
-- read; rows another worker is claiming are skipped, not waited for.
with picked as (
    select id
    from tasks
    where status in ('queued', 'retry')
      and run_at <= now()
      and drift_score >= $3 and drift_score < $4
    order by run_at, id
    limit $2
    for update skip locked
)
update tasks t
set status = 'running',
    attempts = t.attempts + 1,
    worker_id = $1,
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => $5),
    started_at = now(),
    updated_at = now()
from picked
where t.id = picked.id
returning t.*
