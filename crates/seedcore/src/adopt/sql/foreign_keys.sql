-- Foreign keys of other tables that point at tasks or facts.
select k.conname::text as name,
       k.conrelid::regclass::text as from_table,
       k.confrelid::regclass::text as to_table,
       case k.confdeltype
           when 'c' then 'cascade' when 'n' then 'set null' when 'd' then 'set default'
           when 'r' then 'restrict' else 'no action'
       end as on_delete
from pg_constraint k
where k.contype = 'f'
  and k.confrelid in (to_regclass('tasks'), to_regclass('facts'))
  and k.conrelid not in (to_regclass('tasks'), to_regclass('facts'))
order by 2, 1
