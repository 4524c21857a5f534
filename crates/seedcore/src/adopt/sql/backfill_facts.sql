-- Facts in seedcore's terms: tags and metadata never null, timestamps always set.
update facts
set tags = coalesce(tags, '{}'),
    meta_data = coalesce(meta_data, '{}'),
    created_at = coalesce(created_at, updated_at, now()),
    updated_at = coalesce(updated_at, created_at, now())
where tags is null or meta_data is null or created_at is null or updated_at is null
