//! API tokens on SQLite: one row per token, keyed by its public id; only the hash of the
//! token is stored, scopes as a JSON array, times as [`TIME_FORMAT`](super::TIME_FORMAT)
//! text. Revoking sets `revoked_at` and keeps the row, so that listing shows it.

use chrono::Utc;

use super::{
    SqliteStore,
    rows::{json_text, parse_json, parse_time, parse_time_opt, stamp},
};
use crate::auth::{ApiToken, NewToken, StoredToken};
use crate::store::{StoreError, StoreResult, tokens::name_taken};

type Row = (
    String,
    String,
    String,
    String,
    Vec<u8>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn stored(row: Row) -> StoreResult<StoredToken> {
    let (id, name, role, scopes, secret_hash, created_at, last_used_at, expires_at, revoked_at) =
        row;
    Ok(StoredToken {
        token: ApiToken {
            id,
            name,
            role,
            scopes: parse_json(&scopes)?,
            created_at: parse_time(&created_at)?,
            last_used_at: parse_time_opt(last_used_at)?,
            expires_at: parse_time_opt(expires_at)?,
            revoked_at: parse_time_opt(revoked_at)?,
        },
        secret_hash,
    })
}

pub(super) async fn create(store: &SqliteStore, new: NewToken) -> StoreResult<ApiToken> {
    let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
    let row: Row = sqlx::query_as(
        r"insert into api_tokens (id, name, role, scopes, secret_hash, created_at, expires_at)
          values (?1, ?2, ?3, ?4, ?5, ?6, ?7)
          returning id, name, role, scopes, secret_hash, created_at, last_used_at,
                    expires_at, revoked_at",
    )
    .bind(&new.id)
    .bind(&new.name)
    .bind(new.role.as_str())
    .bind(json_text(&scopes)?)
    .bind(new.secret_hash.as_slice())
    .bind(stamp(Utc::now()))
    .bind(new.expires_at.map(stamp))
    .fetch_one(&store.writer)
    .await
    .map_err(name_taken(&new.name))?;
    Ok(stored(row)?.token)
}

pub(super) async fn list(store: &SqliteStore) -> StoreResult<Vec<ApiToken>> {
    let rows: Vec<Row> = sqlx::query_as(
        r"select id, name, role, scopes, secret_hash, created_at, last_used_at, expires_at,
                 revoked_at
          from api_tokens order by created_at, name",
    )
    .fetch_all(&store.reader)
    .await?;
    rows.into_iter().map(|row| Ok(stored(row)?.token)).collect()
}

pub(super) async fn find(store: &SqliteStore, id: &str) -> StoreResult<Option<StoredToken>> {
    let row: Option<Row> = sqlx::query_as(
        r"select id, name, role, scopes, secret_hash, created_at, last_used_at, expires_at,
                 revoked_at
          from api_tokens where id = ?1",
    )
    .bind(id)
    .fetch_optional(&store.reader)
    .await?;
    row.map(stored).transpose()
}

pub(super) async fn revoke(store: &SqliteStore, id_or_name: &str) -> StoreResult<ApiToken> {
    // A second revoke keeps the first time; an id wins over a name that reads the same.
    let row: Option<Row> = sqlx::query_as(
        r"update api_tokens set revoked_at = coalesce(revoked_at, ?2)
          where id = ?1
             or (name = ?1 and not exists (select 1 from api_tokens where id = ?1))
          returning id, name, role, scopes, secret_hash, created_at, last_used_at,
                    expires_at, revoked_at",
    )
    .bind(id_or_name)
    .bind(stamp(Utc::now()))
    .fetch_optional(&store.writer)
    .await?;
    Ok(stored(row.ok_or(StoreError::NotFound)?)?.token)
}

pub(super) async fn touch(store: &SqliteStore, id: &str) -> StoreResult<()> {
    sqlx::query("update api_tokens set last_used_at = ?2 where id = ?1")
        .bind(id)
        .bind(stamp(Utc::now()))
        .execute(&store.writer)
        .await?;
    Ok(())
}

pub(super) async fn any(store: &SqliteStore) -> StoreResult<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from api_tokens)")
            .fetch_one(&store.reader)
            .await?,
    )
}
