-- Full-text search over facts (FTS5, Porter stemming: English), kept in step by triggers.
-- The metadata column holds the metadata's string values, as on PostgreSQL.
create virtual table facts_fts using fts5(
    text,
    meta,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

insert into facts_fts (rowid, text, meta)
select rowid, text,
       coalesce((select group_concat(value, ' ') from json_tree(facts.meta_data)
                 where type = 'text'), '')
from facts;

create trigger facts_fts_inserted after insert on facts begin
    insert into facts_fts (rowid, text, meta)
    values (new.rowid, new.text,
            coalesce((select group_concat(value, ' ') from json_tree(new.meta_data)
                      where type = 'text'), ''));
end;

create trigger facts_fts_updated after update of text, meta_data on facts begin
    delete from facts_fts where rowid = old.rowid;
    insert into facts_fts (rowid, text, meta)
    values (new.rowid, new.text,
            coalesce((select group_concat(value, ' ') from json_tree(new.meta_data)
                      where type = 'text'), ''));
end;

create trigger facts_fts_deleted after delete on facts begin
    delete from facts_fts where rowid = old.rowid;
end;
