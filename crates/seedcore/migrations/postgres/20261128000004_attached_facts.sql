-- The facts a task refers to (the file-based system's `attached_fact_ids`).
alter table tasks add column attached_fact_ids uuid[] not null default '{}';
