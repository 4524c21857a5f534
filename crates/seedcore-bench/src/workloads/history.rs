//! Loading millions of finished tasks into `task_history` quickly, for the workloads measured
//! at history scale (M1, D1): `insert … select generate_series` in chunks, with the statement
//! triggers skipped where the role may (the per-status counters are then rebuilt once).

use sqlx::{Connection, PgConnection};

use crate::{
    db::BenchDb,
    error::{Context as _, Result},
    workloads::progress,
};

/// History rows per insert statement.
const LOAD_CHUNK: i64 = 1_000_000;

/// Runs `insert` (an `insert into task_history … select … from generate_series($1, $2)`) over
/// rows `1..=rows` in chunks. Returns whether the triggers were skipped.
pub async fn load(db: &BenchDb, rows: i64, insert: &'static str, label: &str) -> Result<bool> {
    let mut conn = db.connect().await?;
    let triggers_skipped = sqlx::raw_sql("set session_replication_role = replica")
        .execute(&mut conn)
        .await
        .is_ok();
    let mut first = 1;
    while first <= rows {
        let last = (first + LOAD_CHUNK - 1).min(rows);
        insert_chunk(&mut conn, insert, first, last).await?;
        progress(format_args!("{label} loaded {last} of {rows}"));
        first = last + 1;
    }
    if triggers_skipped {
        sqlx::query("select seedcore_recount()")
            .execute(&mut conn)
            .await
            .context("recount the loaded tasks")?;
    }
    conn.close().await.ok();
    Ok(triggers_skipped)
}

async fn insert_chunk(
    conn: &mut PgConnection,
    insert: &'static str,
    first: i64,
    last: i64,
) -> Result<()> {
    sqlx::query(insert)
        .bind(first)
        .bind(last)
        .execute(conn)
        .await
        .context("load finished tasks")?;
    Ok(())
}

/// How a note names the way the rows were loaded.
pub fn how_loaded(triggers_skipped: bool) -> &'static str {
    if triggers_skipped {
        "triggers skipped, counters rebuilt with seedcore_recount()"
    } else {
        "with the statement triggers"
    }
}
