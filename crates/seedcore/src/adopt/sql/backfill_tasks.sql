-- The original's task rows in seedcore's terms, in one pass. $1: lease seconds granted to a
-- running task from its lock time when it has no lease of its own; $2: requeue running tasks.
--
-- Columns only some versions of the original have (run_after, locked_at, locked_by,
-- owner_id) are read from the row's JSON, where a missing column reads as null, so this one
-- statement serves every version. Running tasks whose lease or lock expired are rescued as
-- store/sql/rescue_expired.sql does; the others keep running under a lease that the reaper
-- rescues once it expires.
with source as (
    select o.id,
           lower(o.status) as was,
           (o.j ->> 'run_after')::timestamptz as run_after,
           (o.j ->> 'locked_at')::timestamptz as locked_at,
           coalesce(o.j ->> 'owner_id', o.j ->> 'locked_by') as holder,
           coalesce(o.lease_expires_at,
                    (o.j ->> 'locked_at')::timestamptz + make_interval(secs => $1))
               as lease_until,
           o.attempts,
           o.max_attempts
    from (select t.id, t.status, t.lease_expires_at, coalesce(t.attempts, 0) as attempts,
                 t.max_attempts, to_jsonb(t) as j
          from tasks t) o
), decided as (
    select s.*,
           case
               when s.was <> 'running' then s.was
               when $2 then 'queued'
               when s.lease_until > now() then 'running'
               when s.attempts >= s.max_attempts then 'failed'
               else 'queued'
           end as status
    from source s
), changed as (
    update tasks t
    set status = d.status,
        description = coalesce(t.description, ''),
        params = coalesce(t.params, '{}'),
        drift_score = coalesce(t.drift_score, 0),
        attempts = d.attempts,
        created_at = coalesce(t.created_at, t.updated_at, now()),
        updated_at = case when d.status <> d.was then now()
                          else coalesce(t.updated_at, t.created_at, now()) end,
        run_at = case when d.status <> d.was then now()
                      else coalesce(d.run_after, t.created_at, now()) end,
        worker_id = d.holder,
        started_at = case when d.was = 'running' then coalesce(d.locked_at, t.updated_at) end,
        finished_at = case
                          when d.status not in ('completed', 'failed', 'cancelled') then null
                          when d.status <> d.was then now()
                          else coalesce(t.updated_at, t.created_at, now())
                      end,
        lease_token = case when d.status = 'running' then gen_random_uuid() end,
        lease_expires_at = case when d.status = 'running' then d.lease_until end,
        result = case when d.was = 'running' and $2 then null else t.result end,
        error = case
                    when d.was = 'running' and $2 then null
                    when d.was = 'running' and d.status <> 'running' then
                        'lease expired: worker ' || coalesce(d.holder, '?')
                        || ' stopped renewing it (attempt ' || d.attempts || ')'
                    else t.error
                end
    from decided d
    where d.id = t.id
    returning t.id, d.was,
              case
                  when d.status = d.was then null
                  when $2 then 'requeued: it was running when the original service stopped'
                  else t.error
              end as note
)
insert into adopted_tasks (id, was, note)
select id, was, note from changed
