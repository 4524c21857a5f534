-- Full-text vectors in a table of their own, so that `facts` rows are narrow.
--
-- A fact's vector was 156 of its row's 377 bytes (F1's facts). Every search by `q`, tag,
-- metadata or date reads `facts` rows (a common word's exact total rechecks each match on its
-- page), and none of them needs the vector: with it elsewhere the table is 40 % smaller, and
-- so is the number of pages those searches visit. Only `search=` reads vectors. A vector row
-- also carries its fact's tags and creation time, so that `search=` alone or with tags or
-- time bounds (the common combinations: a word and a tag is one BitmapAnd of two GIN indexes
-- of this table) is answered from this table, a page ranked and cut before the page's facts
-- are read by id; only `q` or `meta.*` beside `search=` join the two tables.
--
-- Invariant: `fact_vectors` holds exactly one row per fact, with the fact's id, creation time
-- (which never changes) and tags, and the vector of its text and metadata in the configured
-- language. Triggers on `facts` keep it so (insert; update of text, metadata or tags;
-- delete); there is no foreign key, whose per-row checks a bulk create would pay.

create table fact_vectors (
    id            uuid primary key,
    created_at    timestamptz not null,
    tags          text[] not null,
    search_vector tsvector not null
);

insert into fact_vectors (id, created_at, tags, search_vector)
select id, created_at, tags, coalesce(search_vector, seedcore_fact_vector(
    (select value from seedcore_settings where key = 'fts_language')::regconfig,
    text, meta_data))
from facts;

create index fact_vectors_search_idx on fact_vectors using gin (search_vector);
create index fact_vectors_tags_idx on fact_vectors using gin (tags);

drop trigger facts_vector on facts;
drop function seedcore_facts_vector();
-- Drops facts_search_idx with it. Rows written before this migration keep the column's bytes
-- until they are rewritten (`vacuum full facts` reclaims them at once; see the README).
alter table facts drop column search_vector;

create function seedcore_fact_vectors_inserted() returns trigger language plpgsql as $$
begin
    insert into fact_vectors (id, created_at, tags, search_vector)
    select n.id, n.created_at, n.tags, seedcore_fact_vector(
        (select value from seedcore_settings where key = 'fts_language')::regconfig,
        n.text, n.meta_data)
    from new_rows n;
    return null;
end $$;

create trigger facts_vectors_inserted after insert on facts
    referencing new table as new_rows
    for each statement execute function seedcore_fact_vectors_inserted();

-- A row trigger: PostgreSQL allows no column list on a trigger with transition tables, and a
-- fact is updated one at a time.
create function seedcore_fact_vector_updated() returns trigger language plpgsql as $$
begin
    update fact_vectors
    set tags = new.tags,
        search_vector = seedcore_fact_vector(
            (select value from seedcore_settings where key = 'fts_language')::regconfig,
            new.text, new.meta_data)
    where id = new.id;
    return null;
end $$;

create trigger facts_vector_updated after update of text, meta_data, tags on facts
    for each row
    when (old.text is distinct from new.text or old.meta_data is distinct from new.meta_data
          or old.tags is distinct from new.tags)
    execute function seedcore_fact_vector_updated();

create function seedcore_fact_vectors_deleted() returns trigger language plpgsql as $$
begin
    delete from fact_vectors v using old_rows o where v.id = o.id;
    return null;
end $$;

create trigger facts_vectors_deleted after delete on facts
    referencing old table as old_rows
    for each statement execute function seedcore_fact_vectors_deleted();
