-- The indexes of tasks and facts, with the columns each one reads (keys, expressions and
-- predicate: PostgreSQL records a dependency on each).
select c.relname::text as name,
       i.indrelid::regclass::text as table_name,
       pg_get_indexdef(i.indexrelid) as definition,
       array(
           select distinct a.attname::text
           from pg_depend d
           join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
           where d.classid = 'pg_class'::regclass and d.objid = i.indexrelid
             and d.refobjid = i.indrelid and d.refobjsubid > 0
           order by 1
       ) as columns,
       exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
               and k.conrelid = i.indrelid) as backs_constraint,
       format('drop index %s', i.indexrelid::regclass) as drop_sql
from pg_index i
join pg_class c on c.oid = i.indexrelid
where i.indrelid in (to_regclass('tasks'), to_regclass('facts'))
order by 2, 1
