-- Claims up to $2 ready tasks for worker $1 in one statement, higher priority first, then
-- start time, then arrival. Only the partial ready index is read; rows another worker is
-- claiming are skipped, not waited for. $6: the queues this lane serves (null: all), $7: queues
-- it leaves to other lanes; paused queues are skipped.
with picked as (
    select id
    from tasks
    where status in ('queued', 'retry')
      and run_at <= now()
      and drift_score >= $3 and drift_score < $4
      and ($6::text[] is null or queue = any($6))
      and not (queue = any($7))
      and queue not in (select name from queues where paused)
    order by priority desc, run_at, seq
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
