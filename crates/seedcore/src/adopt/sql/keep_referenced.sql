-- Only where other tables hold foreign keys to tasks (the original's, kept by adoption):
-- a finished task such a table still points at stays in `tasks` when the rest move to
-- `task_history` (seedcore_archive deletes them from `tasks`, which the key would refuse,
-- failing the whole batch). Outside a move, deletes are left to the keys as before.
create function seedcore_adopted_keep_referenced() returns trigger
language plpgsql as $$
declare
    key record;
    referenced boolean;
begin
    if not seedcore_moving() then
        return old;
    end if;
    for key in
        select k.conrelid::regclass as source, a.attname as column_name
        from pg_constraint k
        join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1]
        where k.contype = 'f' and k.confrelid = 'tasks'::regclass
          and k.conrelid <> 'tasks'::regclass
    loop
        execute format('select exists (select 1 from %s where %I = $1)',
                       key.source, key.column_name)
            into referenced using old.id;
        if referenced then
            return null;
        end if;
    end loop;
    return old;
end $$;

create trigger tasks_adopted_keep_referenced before delete on tasks
    for each row execute function seedcore_adopted_keep_referenced();
