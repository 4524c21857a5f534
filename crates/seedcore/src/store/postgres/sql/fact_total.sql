-- Facts carrying tag $1 ('': all facts): the folded counter plus the deltas not folded yet.
select coalesce(sum(n), 0)::bigint
from (
    select n from counters where kind = 'facts' and a = $1 and b = ''
    union all
    select n from counter_deltas where kind = 'facts' and a = $1 and b = ''
) counted
