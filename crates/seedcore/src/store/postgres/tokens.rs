//! API tokens on PostgreSQL: one row per token, keyed by its public id; only the hash of the
//! token is stored. Revoking sets `revoked_at` and keeps the row, so that listing shows it.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::auth::{ApiToken, NewToken, StoredToken};
use crate::store::{StoreError, StoreResult, tokens::name_taken};

type Row = (
    String,
    String,
    String,
    Vec<String>,
    Vec<u8>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

fn stored(row: Row) -> StoredToken {
    let (id, name, role, scopes, secret_hash, created_at, last_used_at, expires_at, revoked_at) =
        row;
    StoredToken {
        token: ApiToken {
            id,
            name,
            role,
            scopes,
            created_at,
            last_used_at,
            expires_at,
            revoked_at,
        },
        secret_hash,
    }
}

pub(super) async fn create(store: &PgStore, new: NewToken) -> StoreResult<ApiToken> {
    let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
    let row: Row = sqlx::query_as(
        r"insert into api_tokens (id, name, role, scopes, secret_hash, expires_at)
          values ($1, $2, $3, $4, $5, $6)
          returning id, name, role, scopes, secret_hash, created_at, last_used_at,
                    expires_at, revoked_at",
    )
    .bind(&new.id)
    .bind(&new.name)
    .bind(new.role.as_str())
    .bind(&scopes)
    .bind(new.secret_hash.as_slice())
    .bind(new.expires_at)
    .fetch_one(&store.pool)
    .await
    .map_err(name_taken(&new.name))?;
    Ok(stored(row).token)
}

pub(super) async fn list(store: &PgStore) -> StoreResult<Vec<ApiToken>> {
    let rows: Vec<Row> = sqlx::query_as(
        r"select id, name, role, scopes, secret_hash, created_at, last_used_at, expires_at,
                 revoked_at
          from api_tokens order by created_at, name",
    )
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.into_iter().map(|row| stored(row).token).collect())
}

pub(super) async fn find(store: &PgStore, id: &str) -> StoreResult<Option<StoredToken>> {
    let row: Option<Row> = sqlx::query_as(
        r"select id, name, role, scopes, secret_hash, created_at, last_used_at, expires_at,
                 revoked_at
          from api_tokens where id = $1",
    )
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.map(stored))
}

pub(super) async fn revoke(store: &PgStore, id_or_name: &str) -> StoreResult<ApiToken> {
    // A second revoke keeps the first time; an id wins over a name that reads the same.
    let row: Option<Row> = sqlx::query_as(
        r"update api_tokens set revoked_at = coalesce(revoked_at, now())
          where id = $1
             or (name = $1 and not exists (select 1 from api_tokens where id = $1))
          returning id, name, role, scopes, secret_hash, created_at, last_used_at,
                    expires_at, revoked_at",
    )
    .bind(id_or_name)
    .fetch_optional(&store.pool)
    .await?;
    Ok(stored(row.ok_or(StoreError::NotFound)?).token)
}

pub(super) async fn touch(store: &PgStore, id: &str) -> StoreResult<()> {
    sqlx::query("update api_tokens set last_used_at = now() where id = $1")
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(())
}

pub(super) async fn any(store: &PgStore) -> StoreResult<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from api_tokens)")
            .fetch_one(&store.pool)
            .await?,
    )
}
