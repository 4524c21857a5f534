-- Puts tasks back in the queue with their attempt uncounted (a graceful stop interrupted
-- them); rows are locked in id order (see finish.sql).
with held as (
    select t.id
    from unnest($1::uuid[], $2::uuid[]) as h(id, token)
    join tasks t on t.id = h.id and t.lease_token = h.token
    order by t.id
    for update of t
)
update tasks t
set status = 'queued',
    attempts = greatest(t.attempts - 1, 0),
    run_at = now(),
    worker_id = null,
    lease_token = null,
    lease_expires_at = null,
    started_at = null,
    updated_at = now()
from held
where t.id = held.id
