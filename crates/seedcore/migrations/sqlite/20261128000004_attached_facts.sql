-- The facts a task refers to (the file-based system's `attached_fact_ids`), a JSON array.
alter table tasks add column attached_fact_ids text not null default '[]'
    check (json_type(attached_fact_ids) = 'array');
