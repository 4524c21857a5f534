//! The schema on PostgreSQL: applying the migrations (`migrations/postgres`) and checking
//! that the tables the service needs are there.

use super::{MIGRATOR, PgStore, errors};
use crate::store::{
    MigrationReport, StoreResult,
    migrations::{TABLES, missing_tables},
};

pub(super) async fn migrate(store: &PgStore) -> StoreResult<MigrationReport> {
    // The original service's tables are taken over by `db adopt`, never migrated over.
    crate::adopt::refuse_unadopted(&store.pool).await?;
    let before: Vec<i64> =
        match sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(&store.pool)
            .await
        {
            Ok(versions) => versions,
            // No migrations table yet, so nothing was applied.
            Err(err) if errors::is_undefined_table(&err) => Vec::new(),
            Err(err) => return Err(err.into()),
        };
    MIGRATOR.run(&store.pool).await?;
    Ok(MigrationReport::of(&MIGRATOR, &before))
}

pub(super) async fn verify(store: &PgStore) -> StoreResult<Vec<String>> {
    let present: Vec<String> = sqlx::query_scalar(
        r"select table_name::text from information_schema.tables
          where table_schema = current_schema() and table_name = any($1)",
    )
    .bind(&TABLES[..])
    .fetch_all(&store.pool)
    .await?;
    Ok(missing_tables(&present))
}
