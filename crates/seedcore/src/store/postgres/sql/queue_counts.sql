-- Tasks per (queue, status) of queue $1 (null: every queue), from the counters and the deltas
-- not folded yet; statuses with no task are left out.
select a as queue, b as status, sum(n)::bigint as count
from (
    select a, b, n from counters where kind = 'tasks' and ($1::text is null or a = $1)
    union all
    select a, b, n from counter_deltas where kind = 'tasks' and ($1::text is null or a = $1)
) counted
group by a, b
having sum(n) <> 0
