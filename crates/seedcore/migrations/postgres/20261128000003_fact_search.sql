-- Full-text search over facts, and indexes for the metadata filters.

-- Settings the database itself needs to know; `fts_language` is the text search configuration
-- the search vectors are built with (changed through seedcore's configuration, which rebuilds
-- the vectors).
create table seedcore_settings (
    key   text primary key,
    value text not null
);
insert into seedcore_settings (key, value) values ('fts_language', 'english');

-- The text weighs more than the metadata's string values.
create function seedcore_fact_vector(language regconfig, text text, meta jsonb)
returns tsvector language sql immutable parallel safe as $$
    select setweight(to_tsvector(language, text), 'A')
        || setweight(jsonb_to_tsvector(language, meta, '["string"]'), 'B')
$$;

create function seedcore_facts_vector() returns trigger language plpgsql as $$
begin
    new.search_vector := seedcore_fact_vector(
        (select value from seedcore_settings where key = 'fts_language')::regconfig,
        new.text, new.meta_data);
    return new;
end $$;

alter table facts add column search_vector tsvector;
update facts set search_vector = seedcore_fact_vector('english', text, meta_data);

create trigger facts_vector before insert or update of text, meta_data on facts
    for each row execute function seedcore_facts_vector();

-- `search=`: full-text match.
create index facts_search_idx on facts using gin (search_vector);
-- `meta.<key>=<value>`: JSON containment.
create index facts_meta_idx on facts using gin (meta_data jsonb_path_ops);
