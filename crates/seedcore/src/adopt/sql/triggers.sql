-- The user triggers of tasks and facts, with their functions and how many triggers on other
-- tables share each function.
select t.tgname::text as name,
       t.tgrelid::regclass::text as table_name,
       t.tgfoid::regprocedure::text as function,
       (select count(*) from pg_trigger o
        where o.tgfoid = t.tgfoid
          and o.tgrelid not in (to_regclass('tasks'), to_regclass('facts'))) as other_users,
       format('drop trigger %I on %s', t.tgname, t.tgrelid::regclass) as drop_sql,
       format('drop function if exists %s', t.tgfoid::regprocedure) as drop_function_sql
from pg_trigger t
where not t.tgisinternal
  and t.tgrelid in (to_regclass('tasks'), to_regclass('facts'))
order by 2, 1
