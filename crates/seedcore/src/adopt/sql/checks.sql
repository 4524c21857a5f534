-- The check constraints of tasks and facts, with the columns each reads.
select k.conname::text as name,
       k.conrelid::regclass::text as table_name,
       pg_get_constraintdef(k.oid) as definition,
       array(
           select a.attname::text
           from pg_attribute a
           where a.attrelid = k.conrelid and a.attnum = any(k.conkey)
           order by 1
       ) as columns,
       format('alter table %s drop constraint %I', k.conrelid::regclass, k.conname) as drop_sql
from pg_constraint k
where k.contype = 'c'
  and k.conrelid in (to_regclass('tasks'), to_regclass('facts'))
order by 2, 1
