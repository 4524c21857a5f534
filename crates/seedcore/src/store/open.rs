//! Opening a store: the one place that turns a [`DatabaseTarget`] into a [`DynStore`], for the
//! binary and for programs that embed seedcore.
//!
//! PostgreSQL is tried with one direct connection first (a pool reports only "timed out"; the
//! connection says why), then gets its pool. A SQLite file and its folder are created if
//! missing. Neither is migrated here: call [`Store::migrate`](super::Store::migrate).

use std::{path::PathBuf, sync::Arc, time::Duration};

use sqlx::ConnectOptions;

use super::{DatabaseTarget, DynStore, PgStore, SqliteStore, StoreError};

/// How long [`open`] waits for a PostgreSQL connection.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the store a URL names (`postgresql://…` or `sqlite:///path/file.db`), for programs
/// that embed seedcore. PostgreSQL gets a pool of `pool_size` connections; a SQLite file and its
/// folder are created if missing. Call [`Store::migrate`](super::Store::migrate) before use.
pub async fn open(url: &str, pool_size: u32) -> Result<DynStore, OpenError> {
    let target = DatabaseTarget::from_url(url).map_err(|e| OpenError::Url(e.0))?;
    open_target(target, pool_size, OPEN_TIMEOUT).await
}

/// Opens the store `target` names. PostgreSQL gets a pool of `pool_size` connections, each
/// waited for at most `timeout`; a SQLite file and its folder are created if missing.
pub async fn open_target(
    target: DatabaseTarget,
    pool_size: u32,
    timeout: Duration,
) -> Result<DynStore, OpenError> {
    match target {
        DatabaseTarget::Postgres(options) => {
            match tokio::time::timeout(timeout, options.connect()).await {
                Ok(Ok(probe)) => drop(probe),
                Ok(Err(err)) => return Err(OpenError::Store(err.into())),
                Err(_) => return Err(OpenError::NoAnswer(timeout)),
            }
            Ok(Arc::new(
                PgStore::connect(*options, pool_size, timeout).await?,
            ))
        }
        DatabaseTarget::Sqlite(path) => {
            if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
                std::fs::create_dir_all(folder).map_err(|source| OpenError::Folder {
                    folder: folder.to_path_buf(),
                    source,
                })?;
            }
            Ok(Arc::new(SqliteStore::open(&path).await?))
        }
    }
}

/// Why [`open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not usable.
    #[error("{0}")]
    Url(String),
    /// The SQLite file's folder cannot be created.
    #[error("cannot create the data folder {}: {source}", folder.display())]
    Folder {
        /// The folder.
        folder: PathBuf,
        /// Why it cannot be created.
        source: std::io::Error,
    },
    /// The PostgreSQL server did not answer within the timeout.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The database could not be reached or opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}
