-- Tasks in status $1 (null: all tasks): the folded counters plus the deltas not folded yet.
select coalesce(sum(n), 0)::bigint
from (
    select n from counters where kind = 'tasks' and ($1::text is null or b = $1)
    union all
    select n from counter_deltas where kind = 'tasks' and ($1::text is null or b = $1)
) counted
