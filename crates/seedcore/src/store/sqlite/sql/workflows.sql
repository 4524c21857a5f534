-- A page of workflows (?1 rows after ?2), newest first, each with its tasks counted per status
-- as a JSON object.
select w.id, w.name, w.created_at,
       coalesce((select json_group_object(status, n)
                 from (select status, count(*) as n from tasks t
                       where t.workflow_id = w.id group by status)), '{}') as counts
from workflows w
order by w.created_at desc, w.id desc
limit ?1 offset ?2
