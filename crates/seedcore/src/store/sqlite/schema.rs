//! The schema on SQLite: applying the migrations (`migrations/sqlite`) and checking that the
//! tables the service needs are there.

use std::sync::atomic::Ordering;

use super::{MIGRATOR, SqliteStore};
use crate::store::{MigrationReport, StoreResult, migrations::missing_tables};

pub(super) async fn migrate(store: &SqliteStore) -> StoreResult<MigrationReport> {
    let before: Vec<i64> = if has_table(store, "_sqlx_migrations").await? {
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(&store.writer)
            .await?
    } else {
        Vec::new()
    };
    MIGRATOR.run(&store.writer).await?;
    let waiting: bool =
        sqlx::query_scalar("select exists (select 1 from tasks where status = 'blocked')")
            .fetch_one(&store.writer)
            .await?;
    store.dependents.fetch_or(waiting, Ordering::Relaxed);
    Ok(MigrationReport::of(&MIGRATOR, &before))
}

pub(super) async fn verify(store: &SqliteStore) -> StoreResult<Vec<String>> {
    let present: Vec<String> =
        sqlx::query_scalar("select name from sqlite_master where type = 'table'")
            .fetch_all(&store.reader)
            .await?;
    Ok(missing_tables(&present))
}

async fn has_table(store: &SqliteStore, name: &str) -> StoreResult<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("select 1 from sqlite_master where type = 'table' and name = ?1")
            .bind(name)
            .fetch_optional(&store.writer)
            .await?;
    Ok(found.is_some())
}
