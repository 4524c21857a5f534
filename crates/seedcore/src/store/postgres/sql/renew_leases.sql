-- Extends the leases still current; rows are locked in id order (see finish.sql).
with held as (
    select t.id
    from unnest($1::uuid[], $2::uuid[]) as h(id, token)
    join tasks t on t.id = h.id and t.lease_token = h.token
    order by t.id
    for update of t
)
update tasks t
set lease_expires_at = now() + make_interval(secs => $3)
from held
where t.id = held.id
returning t.id, t.lease_token
