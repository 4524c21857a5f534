//! Facts on SQLite: creating them (one, or many in one transaction), reading, patching,
//! deleting and tag counts. The list and its filters are in `fact_search`.

use chrono::Utc;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use super::{
    FactRow, SqliteStore,
    rows::{json_text, stamp},
};
use crate::{
    model::{Fact, FactPatch, IdRef, NewFact},
    store::{StoreError, StoreResult, TagCount},
};

/// Rows per insert statement of a bulk create (SQLite limits bind parameters per statement).
const BULK_CHUNK: usize = 1000;

pub(super) async fn create(store: &SqliteStore, fact: NewFact) -> StoreResult<Fact> {
    // Read to the end, so a commit that fails is seen (see the module docs of the store).
    let row: Option<FactRow> = sqlx::query_as(
        r"insert into facts (id, text, tags, meta_data, created_at, updated_at)
          values (?1, ?2, ?3, ?4, ?5, ?5)
          returning *",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(&fact.text)
    .bind(json_text(&fact.tags)?)
    .bind(json_text(&fact.meta_data)?)
    .bind(stamp(Utc::now()))
    .fetch_all(&store.writer)
    .await?
    .pop();
    row.ok_or(StoreError::Database(sqlx::Error::RowNotFound))?
        .into_fact()
}

pub(super) async fn get(store: &SqliteStore, id: Uuid) -> StoreResult<Fact> {
    let row: Option<FactRow> = sqlx::query_as("select * from facts where id = ?1")
        .bind(id.to_string())
        .fetch_optional(&store.reader)
        .await?;
    row.ok_or(StoreError::NotFound)?.into_fact()
}

pub(super) async fn update(store: &SqliteStore, id: Uuid, patch: FactPatch) -> StoreResult<Fact> {
    if patch.is_empty() {
        return get(store, id).await;
    }
    let mut update = QueryBuilder::<Sqlite>::new("update facts set updated_at = ");
    update.push_bind(stamp(Utc::now()));
    if let Some(text) = &patch.text {
        update.push(", text = ").push_bind(text.clone());
    }
    if let Some(tags) = &patch.tags {
        update.push(", tags = ").push_bind(json_text(tags)?);
    }
    if let Some(meta_data) = &patch.meta_data {
        update
            .push(", meta_data = ")
            .push_bind(json_text(meta_data)?);
    }
    update
        .push(" where id = ")
        .push_bind(id.to_string())
        .push(" returning *");
    let row: Option<FactRow> = update
        .build_query_as()
        .fetch_all(&store.writer)
        .await?
        .pop();
    row.ok_or(StoreError::NotFound)?.into_fact()
}

pub(super) async fn delete(store: &SqliteStore, id: Uuid) -> StoreResult<()> {
    store
        .delete_by_id("delete from facts where id = ?1", id)
        .await
}

pub(super) async fn create_many(
    store: &SqliteStore,
    facts: Vec<NewFact>,
) -> StoreResult<Vec<Fact>> {
    let now = stamp(Utc::now());
    let mut rows = Vec::with_capacity(facts.len());
    for fact in facts {
        let tags = json_text(&fact.tags)?;
        let meta = json_text(&fact.meta_data)?;
        rows.push((Uuid::new_v4().to_string(), fact.text, tags, meta));
    }
    let mut tx = store.writer.begin_with("begin immediate").await?;
    let mut created = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(BULK_CHUNK) {
        let mut insert = QueryBuilder::new(
            "insert into facts (id, text, tags, meta_data, created_at, updated_at) ",
        );
        insert.push_values(chunk, |mut row, (id, text, tags, meta)| {
            row.push_bind(id.clone())
                .push_bind(text.clone())
                .push_bind(tags.clone())
                .push_bind(meta.clone())
                .push_bind(now.clone())
                .push_bind(now.clone());
        });
        insert.push(" returning *");
        let stored: Vec<FactRow> = insert.build_query_as().fetch_all(&mut *tx).await?;
        for row in stored {
            created.push(row.into_fact()?);
        }
    }
    tx.commit().await?;
    Ok(created)
}

pub(super) async fn tag_counts(
    store: &SqliteStore,
    prefix: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<TagCount>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        r"select value, count(*) from facts, json_each(facts.tags)
          where ?1 is null or substr(value, 1, length(?1)) = ?1
          group by value order by count(*) desc, value limit ?2",
    )
    .bind(prefix)
    .bind(limit)
    .fetch_all(&store.reader)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tag, count)| TagCount { tag, count })
        .collect())
}

pub(super) async fn resolve(store: &SqliteStore, id: &IdRef) -> StoreResult<Uuid> {
    store
        .resolve(
            id,
            "select id from facts where id between ?1 and ?2 limit 2",
        )
        .await
}
