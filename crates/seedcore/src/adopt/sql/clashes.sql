-- Objects in the current schema with names seedcore's migrations create: relations named in
-- $1 other than indexes of tasks and facts (those are dropped as conflicts), and functions
-- named seedcore_*.
select format('%s %s',
              case c.relkind when 'r' then 'table' when 'v' then 'view' when 'i' then 'index'
                             when 'S' then 'sequence' when 'm' then 'materialized view'
                             else 'relation' end,
              c.oid::regclass)
from pg_class c
where c.relnamespace = current_schema()::regnamespace
  and c.relname = any($1)
  and not (c.relkind = 'i' and exists (
      select 1 from pg_index i
      where i.indexrelid = c.oid
        and i.indrelid in (to_regclass('tasks'), to_regclass('facts'))))
union all
select format('function %s', p.oid::regprocedure)
from pg_proc p
where p.pronamespace = current_schema()::regnamespace and p.proname like 'seedcore\_%'
order by 1
