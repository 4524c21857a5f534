-- Records how a batch of attempts ended, each only while its lease token is current (a token
-- exists only while its task runs: see the lease_only_while_running migration). Rows are
-- locked in id order, as the lease renewal does, so the two never deadlock.
with held as (
    select t.id, b.token, b.status, b.result, b.error, b.run_at
    from unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[], $6::timestamptz[])
         as b(id, token, status, result, error, run_at)
    join tasks t on t.id = b.id and t.lease_token = b.token
    order by t.id
    for update of t
)
update tasks t
set status = held.status,
    result = held.result,
    error = held.error,
    run_at = coalesce(held.run_at, t.run_at),
    finished_at = case when held.status = 'retry' then null else now() end,
    lease_token = null,
    lease_expires_at = null,
    updated_at = now()
from held
where t.id = held.id
returning t.id, held.token
