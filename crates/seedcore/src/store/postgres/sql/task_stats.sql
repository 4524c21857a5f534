-- Tasks that finished in the window, per bucket: counts, and run and waiting time percentiles.
-- $1 the first bucket's start, $2 the bucket size in seconds, $3 how many buckets, $4 a queue
-- and $5 a type to keep (null: all).
--
-- Each table has an index on `finished_at` (partial on the hot table, see the
-- task_stats_indexes migration), so the cost follows the tasks in the window, not the history.
with finished as (
    select status, started_at, run_at, finished_at
    from tasks
    where status in ('completed', 'failed', 'cancelled')
      and finished_at >= $1 and finished_at < $1 + make_interval(secs => $2 * $3)
      and ($4::text is null or queue = $4) and ($5::text is null or type = $5)
    union all
    select status, started_at, run_at, finished_at
    from task_history
    where finished_at >= $1 and finished_at < $1 + make_interval(secs => $2 * $3)
      and ($4::text is null or queue = $4) and ($5::text is null or type = $5)
), placed as (
    -- date_part, not extract: it answers in float8, and extract's numeric arithmetic made
    -- these expressions about a third slower over a day's 330,000 history rows.
    select floor(date_part('epoch', finished_at - $1) / $2)::bigint as n,
           status,
           case when status in ('completed', 'failed') and started_at is not null
                then date_part('epoch', finished_at - started_at) * 1000 end as run_ms,
           case when started_at is not null
                then greatest(date_part('epoch', started_at - run_at) * 1000, 0) end as wait_ms
    from finished
), counted as (
    select n,
           count(*) filter (where status = 'completed') as completed,
           count(*) filter (where status = 'failed') as failed,
           count(*) filter (where status = 'cancelled') as cancelled,
           percentile_cont(0.5) within group (order by run_ms) as run_p50,
           percentile_cont(0.95) within group (order by run_ms) as run_p95,
           percentile_cont(0.5) within group (order by wait_ms) as wait_p50,
           percentile_cont(0.95) within group (order by wait_ms) as wait_p95
    from placed
    group by n
)
-- Every bucket, those without a finished task as zeros.
select b.n, coalesce(c.completed, 0), coalesce(c.failed, 0), coalesce(c.cancelled, 0),
       c.run_p50, c.run_p95, c.wait_p50, c.wait_p95
from generate_series(0::bigint, $3 - 1) as b(n)
left join counted c on c.n = b.n
order by b.n
