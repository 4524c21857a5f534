-- The views (plain or materialized) that read any of the columns $1 (`table.column`) of tasks
-- or facts, and every view over those, with the statements that drop and recreate each one
-- with its definition unchanged. Deepest last: drop in reverse, create in order.
with recursive changed as (
    select a.attrelid, a.attnum
    from unnest($1::text[]) as c(qualified)
    join pg_attribute a
      on a.attrelid = to_regclass(split_part(c.qualified, '.', 1))
     and a.attname = split_part(c.qualified, '.', 2)
), readers(oid, depth) as (
    select distinct r.ev_class, 1
    from pg_depend d
    join pg_rewrite r on r.oid = d.objid
    join changed c on c.attrelid = d.refobjid and c.attnum = d.refobjsubid
    where d.classid = 'pg_rewrite'::regclass and r.ev_class <> d.refobjid
    union all
    select r.ev_class, readers.depth + 1
    from readers
    join pg_depend d on d.refobjid = readers.oid and d.classid = 'pg_rewrite'::regclass
    join pg_rewrite r on r.oid = d.objid
    where r.ev_class <> readers.oid and readers.depth < 32
), deepest as (
    select oid, max(depth) as depth from readers group by oid
)
select v.oid::regclass::text as name,
       d.depth,
       format('drop %s %s', case v.relkind when 'm' then 'materialized view' else 'view' end,
              v.oid::regclass) as drop_sql,
       format('create %s %s as %s',
              case v.relkind when 'm' then 'materialized view' else 'view' end,
              v.oid::regclass, pg_get_viewdef(v.oid)) as create_sql
from deepest d
join pg_class v on v.oid = d.oid
order by d.depth, 1
