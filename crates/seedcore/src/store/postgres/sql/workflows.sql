-- A page of workflows ($1 rows after $2), newest first, each with its tasks counted per status
-- (the tasks found through tasks_workflow_idx).
select w.id, w.name, w.created_at,
       coalesce((select jsonb_object_agg(status, n)
                 from (select status, count(*) as n from all_tasks t
                       where t.workflow_id = w.id group by status) counted), '{}') as counts
from workflows w
order by w.created_at desc, w.id desc
limit $1 offset $2
