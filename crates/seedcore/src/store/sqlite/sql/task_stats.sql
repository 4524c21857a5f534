-- Tasks that finished in the window, per bucket that has any: counts, and run and waiting time
-- percentiles. ?1 the first bucket's start and ?2 the last one's end (stored time text), ?3 the
-- bucket size in seconds, ?4 a queue and ?5 a type to keep (null: all).
--
-- Times are compared as text (fixed width, so text order is time order). The bucket comes from
-- the whole seconds alone (`substr` drops the fraction, which SQLite's date functions would
-- round to the millisecond, moving a task finished 0.4 ms before a bucket's end into the next
-- one); durations are differences of `julianday`, rounded to the millisecond SQLite keeps. A
-- percentile is interpolated as
-- `percentile_cont` does: the value at rank i (0-based, of `last + 1` sorted values) weighs
-- max(0, 1 - |i - p * last|), which is 1 - f and f for the two ranks around p * last.
with placed as (
    select (unixepoch(substr(finished_at, 1, 19)) - unixepoch(substr(?1, 1, 19))) / ?3 as n,
           status,
           case when status in ('completed', 'failed') and started_at is not null
                then round((julianday(finished_at) - julianday(started_at)) * 86400000.0)
           end as run_ms,
           case when started_at is not null
                then max(round((julianday(started_at) - julianday(run_at)) * 86400000.0), 0.0)
           end as wait_ms
    from tasks indexed by tasks_finished_idx
    where finished_at >= ?1 and finished_at < ?2
      and status in ('completed', 'failed', 'cancelled')
      and (?4 is null or queue = ?4) and (?5 is null or type = ?5)
), runs as (
    select n, run_ms as v,
           row_number() over (partition by n order by run_ms) - 1 as i,
           count(*) over (partition by n) - 1 as last
    from placed where run_ms is not null
), waits as (
    select n, wait_ms as v,
           row_number() over (partition by n order by wait_ms) - 1 as i,
           count(*) over (partition by n) - 1 as last
    from placed where wait_ms is not null
), run_p as (
    select n,
           sum(v * max(0.0, 1 - abs(i - 0.5 * last))) as p50,
           sum(v * max(0.0, 1 - abs(i - 0.95 * last))) as p95
    from runs group by n
), wait_p as (
    select n,
           sum(v * max(0.0, 1 - abs(i - 0.5 * last))) as p50,
           sum(v * max(0.0, 1 - abs(i - 0.95 * last))) as p95
    from waits group by n
), counts as (
    select n,
           sum(status = 'completed') as completed,
           sum(status = 'failed') as failed,
           sum(status = 'cancelled') as cancelled
    from placed group by n
)
select c.n, c.completed, c.failed, c.cancelled,
       r.p50 as run_p50, r.p95 as run_p95, w.p50 as wait_p50, w.p95 as wait_p95
from counts c
left join run_p r on r.n = c.n
left join wait_p w on w.n = c.n
order by c.n
