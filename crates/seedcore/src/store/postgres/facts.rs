//! Facts on PostgreSQL: creating them (single creates batched with concurrent ones, or many in
//! one statement), reading, patching, deleting, tag counts, and the language full-text search
//! vectors are built in. The list and its filters are in `fact_search`.

use sqlx::{Postgres, QueryBuilder, types::Json};
use uuid::Uuid;

use super::{FactRow, PgStore, fact_search::FACT_COLUMNS};
use crate::model::{Fact, FactPatch, IdRef, NewFact};
use crate::store::{StoreError, StoreResult, TagCount, like_literal, rows::facts};

pub(super) async fn create(store: &PgStore, fact: NewFact) -> StoreResult<Fact> {
    let row = store.batched_fact_creates().call(fact).await??;
    row.into_fact()
}

pub(super) async fn create_many(store: &PgStore, facts: Vec<NewFact>) -> StoreResult<Vec<Fact>> {
    if facts.is_empty() {
        return Ok(Vec::new());
    }
    let mut insert = QueryBuilder::new("insert into facts as f (id, text, tags, meta_data) ");
    insert.push_values(facts, |mut row, fact| {
        row.push_bind(Uuid::new_v4())
            .push_bind(fact.text)
            .push_bind(fact.tags)
            .push_bind(Json(fact.meta_data));
    });
    insert.push(" returning ").push(FACT_COLUMNS);
    let rows: Vec<FactRow> = insert.build_query_as().fetch_all(&store.pool).await?;
    self::facts(rows)
}

pub(super) async fn resolve(store: &PgStore, id: &IdRef) -> StoreResult<Uuid> {
    store
        .resolve(
            id,
            "select id from facts where id between $1 and $2 limit 2",
        )
        .await
}

pub(super) async fn get(store: &PgStore, id: Uuid) -> StoreResult<Fact> {
    let row: Option<FactRow> = sqlx::query_as(
        "select id, text, tags, meta_data, created_at, updated_at from facts where id = $1",
    )
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    row.ok_or(StoreError::NotFound)?.into_fact()
}

pub(super) async fn update(store: &PgStore, id: Uuid, patch: FactPatch) -> StoreResult<Fact> {
    if patch.is_empty() {
        return get(store, id).await;
    }
    let mut update = QueryBuilder::<Postgres>::new("update facts set updated_at = now()");
    if let Some(text) = &patch.text {
        update.push(", text = ").push_bind(text);
    }
    if let Some(tags) = &patch.tags {
        update.push(", tags = ").push_bind(tags);
    }
    if let Some(meta_data) = &patch.meta_data {
        update.push(", meta_data = ").push_bind(Json(meta_data));
    }
    update
        .push(" where id = ")
        .push_bind(id)
        .push(" returning *");
    let row: Option<FactRow> = update.build_query_as().fetch_optional(&store.pool).await?;
    row.ok_or(StoreError::NotFound)?.into_fact()
}

pub(super) async fn delete(store: &PgStore, id: Uuid) -> StoreResult<()> {
    store
        .delete_by_id("delete from facts where id = $1", id)
        .await
}

pub(super) async fn tag_counts(
    store: &PgStore,
    prefix: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<TagCount>> {
    let pattern = prefix.map(|p| format!("{}%", like_literal(p)));
    let rows: Vec<(String, i64)> = sqlx::query_as(
        r"select tag, count(*) from facts, unnest(tags) as tag
          where $1::text is null or tag like $1 escape ''
          group by tag order by count(*) desc, tag limit $2",
    )
    .bind(pattern)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tag, count)| TagCount { tag, count })
        .collect())
}

pub(super) async fn set_search_language(store: &PgStore, language: &str) -> StoreResult<bool> {
    let mut tx = store.pool.begin().await?;
    let current: String = sqlx::query_scalar(
        "select value from seedcore_settings where key = 'fts_language' for update",
    )
    .fetch_one(&mut *tx)
    .await?;
    if current == language {
        return Ok(false);
    }
    // Fails with "text search configuration ... does not exist" for an unknown language.
    sqlx::query(
        "update seedcore_settings set value = $1::regconfig::text where key = 'fts_language'",
    )
    .bind(language)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        r"update fact_vectors v
          set search_vector = seedcore_fact_vector($1::regconfig, f.text, f.meta_data)
          from facts f where f.id = v.id",
    )
    .bind(language)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
