//! The benchmark databases: one per workload (or per run), created on the admin server and
//! dropped afterwards, also when the workload fails or the tool is interrupted.

use std::{str::FromStr, sync::Mutex, time::Duration};

use sqlx::{
    AssertSqlSafe, ConnectOptions, Connection, PgConnection, PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use uuid::Uuid;

use crate::error::{Context, Error, Result};

/// Databases created and not yet dropped, so an interrupted run can still drop them.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The server the benchmark databases are created on.
#[derive(Clone, Debug)]
pub struct Admin {
    url: String,
    options: PgConnectOptions,
}

impl Admin {
    pub fn new(url: &str) -> Result<Admin> {
        let options = PgConnectOptions::from_str(url).context("parse the --dsn URL")?;
        Ok(Admin {
            url: url.to_string(),
            options,
        })
    }

    async fn connect(&self) -> Result<PgConnection> {
        self.options.connect().await.context(format_args!(
            "connect to the admin database ({})",
            self.redacted()
        ))
    }

    /// Refuses, before anything is loaded, a run that would open more connections than the
    /// server still accepts: otherwise it fails with PostgreSQL's "too many clients" minutes
    /// in, after its load.
    pub async fn ensure_connections(&self, needed: usize) -> Result<()> {
        let mut conn = self.connect().await?;
        let free: i64 = sqlx::query_scalar(
            "select current_setting('max_connections')::int8
                    - current_setting('superuser_reserved_connections')::int8
                    - (select count(*) from pg_stat_activity
                       where backend_type = 'client backend' and pid <> pg_backend_pid())",
        )
        .fetch_one(&mut conn)
        .await
        .context("count the connections the server still accepts")?;
        conn.close().await.ok();
        enough_connections(free, needed, &self.redacted())
    }

    /// The URL as given, for programs that connect by themselves (the peer).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL without its password, for messages.
    pub fn redacted(&self) -> String {
        let opts = &self.options;
        format!(
            "postgres://{}@{}:{}/{}",
            opts.get_username(),
            opts.get_host(),
            opts.get_port(),
            opts.get_database().unwrap_or_default()
        )
    }
}

/// A database of the benchmark's own, empty when created.
pub struct BenchDb {
    pub name: String,
    /// The URL seedcore processes get as PG_DSN.
    pub url: String,
    options: PgConnectOptions,
}

impl BenchDb {
    pub async fn create(admin: &Admin) -> Result<BenchDb> {
        let name = format!("seedcore_bench_{}", Uuid::new_v4().simple());
        let mut conn = admin.connect().await?;
        // Database names cannot be bind parameters; this one is ours (hex digits only).
        sqlx::raw_sql(AssertSqlSafe(format!("create database {name}")))
            .execute(&mut conn)
            .await
            .context(format_args!("create database {name}"))?;
        conn.close().await.ok();
        LIVE.lock().expect("live databases").push(name.clone());
        Ok(BenchDb {
            url: url_for_database(&admin.url, &name),
            options: admin.options.clone().database(&name),
            name,
        })
    }

    /// A pool on this database for the tool's own statements.
    pub async fn pool(&self, connections: u32) -> Result<PgPool> {
        PgPoolOptions::new()
            .max_connections(connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(self.options.clone())
            .await
            .context(format_args!("connect to {}", self.name))
    }

    /// One connection of its own, for session settings that must not leak into a pool.
    pub async fn connect(&self) -> Result<PgConnection> {
        self.options
            .connect()
            .await
            .context(format_args!("connect to {}", self.name))
    }

    /// `count` connections of their own, opened one after another: a baseline's clients.
    pub async fn connections(&self, count: usize) -> Result<Vec<PgConnection>> {
        let mut conns = Vec::with_capacity(count);
        for _ in 0..count {
            conns.push(self.connect().await?);
        }
        Ok(conns)
    }
}

/// Runs `body` on a fresh database and drops the database afterwards, whatever `body` returned.
pub async fn with_database<T>(
    admin: &Admin,
    body: impl AsyncFnOnce(&BenchDb) -> Result<T>,
) -> Result<T> {
    let db = BenchDb::create(admin).await?;
    let outcome = body(&db).await;
    let dropped = drop_database(admin, &db.name).await;
    let value = outcome?;
    dropped?;
    Ok(value)
}

/// Drops one of our databases, closing whatever connections are still open on it.
async fn drop_database(admin: &Admin, name: &str) -> Result<()> {
    let mut conn = admin.connect().await?;
    // `name` is one we generated (see `BenchDb::create`).
    sqlx::raw_sql(AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&mut conn)
    .await
    .context(format_args!("drop database {name}"))?;
    conn.close().await.ok();
    LIVE.lock().expect("live databases").retain(|n| n != name);
    Ok(())
}

/// Drops every database still live: the way out of an interrupted run.
pub async fn drop_all_live(admin: &Admin) {
    let names = LIVE.lock().expect("live databases").clone();
    for name in names {
        if let Err(err) = drop_database(admin, &name).await {
            eprintln!("seedcore-bench: {err}");
        }
    }
}

/// Whether `free` connections leave room for `needed`, with what to do when they do not.
fn enough_connections(free: i64, needed: usize, server: &str) -> Result<()> {
    if free >= needed as i64 {
        return Ok(());
    }
    Err(Error::new(format!(
        "PostgreSQL at {server} accepts {free} more client connections, and this run opens up \
         to {needed} at once (the baselines' own connections, seedcore's pool and the tool's): \
         raise its max_connections, close other clients, or run fewer with --connections"
    )))
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
fn url_for_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_needing_more_connections_than_the_server_accepts_is_refused_saying_why() {
        assert!(enough_connections(92, 92, "postgres://h").is_ok());
        let refused = enough_connections(91, 92, "postgres://h")
            .unwrap_err()
            .to_string();
        assert!(refused.contains("accepts 91 more"), "{refused}");
        assert!(refused.contains("up to 92"), "{refused}");
        assert!(refused.contains("max_connections"), "{refused}");
    }

    #[test]
    fn the_database_path_is_replaced_and_the_query_kept() {
        assert_eq!(
            url_for_database("postgres://u:p@h:5432/postgres", "b"),
            "postgres://u:p@h:5432/b"
        );
        assert_eq!(
            url_for_database("postgresql://h/postgres?sslmode=disable", "b"),
            "postgresql://h/b?sslmode=disable"
        );
        assert_eq!(
            url_for_database("postgres://h:5432", "b"),
            "postgres://h:5432/b"
        );
    }
}
