//! Opening a store: the one place that turns a [`DatabaseTarget`] into a [`DynStore`], for the
//! binary and for programs that embed seedcore.
//!
//! PostgreSQL is tried with one direct connection first (a pool reports only "timed out"; the
//! connection says why), then gets its pool. A TLS failure on that connection (TLS refused, a
//! certificate that does not verify, a server that takes encrypted connections only) is told
//! apart from an unreachable server, in words that say what to change. A SQLite file and its
//! folder are created if missing. Neither is migrated here: call
//! [`Store::migrate`](super::Store::migrate).

use std::{path::PathBuf, sync::Arc, time::Duration};

use rustls::CertificateError;
use sqlx::{ConnectOptions, postgres::PgConnectOptions};

use super::{DatabaseTarget, DynStore, PgStore, SqliteStore, StoreError};

/// A statement that takes longer is logged at WARN whatever the level.
pub const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// Every statement is logged at DEBUG with its time, rows and a summary of its text (target
/// `sqlx::query`, seen with `LOG_LEVEL=DEBUG`); a slow one at WARN. Said here rather than left
/// to the driver's defaults, since operators rely on it.
pub(crate) fn statement_logging<O: ConnectOptions>(options: O) -> O {
    options
        .log_statements(log::LevelFilter::Debug)
        .log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT)
}

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
                Ok(Err(err)) => {
                    return Err(match tls_failure(&err, &options) {
                        Some(why) => OpenError::Tls(why),
                        None => OpenError::Store(err.into()),
                    });
                }
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
    /// The TLS connection to PostgreSQL failed: TLS refused, or a certificate not accepted.
    #[error("TLS: {0}")]
    Tls(String),
    /// The PostgreSQL server did not answer within the timeout.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The database could not be reached or opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What went wrong with TLS, when that is why the connection failed.
fn tls_failure(err: &sqlx::Error, options: &PgConnectOptions) -> Option<String> {
    match err {
        sqlx::Error::Tls(why) if why.to_string().contains("does not support TLS") => Some(
            "the server does not accept TLS connections (the sslmode asks for TLS: turn ssl on \
             in the server's postgresql.conf, or lower the sslmode)"
                .into(),
        ),
        sqlx::Error::Tls(why) => Some(format!("the TLS setup failed: {why}")),
        sqlx::Error::Io(io) => {
            let refused = io.get_ref()?.downcast_ref::<rustls::Error>()?;
            Some(certificate_refused(refused, options.get_host()))
        }
        sqlx::Error::Database(db)
            if db.code().as_deref() == Some("28000") && db.message().contains("no encryption") =>
        {
            Some(format!(
                "the server accepts only encrypted connections from here ({}): set sslmode to \
                 require, verify-ca or verify-full",
                db.message()
            ))
        }
        _ => None,
    }
}

fn certificate_refused(err: &rustls::Error, host: &str) -> String {
    let rustls::Error::InvalidCertificate(why) = err else {
        return format!("the TLS handshake failed: {err}");
    };
    match why {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "the server's certificate is not valid for the host name '{host}' ({err}); \
                 sslmode=verify-full checks it: connect by a name the certificate lists, or \
                 use verify-ca"
            )
        }
        // A root of the same name as the true issuer but another key fails on the signature.
        CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
            "the server's certificate does not verify ({err}): it is not signed by a trusted \
             root; set sslrootcert in the URL, or POSTGRES_SSLROOTCERT, to the certificate of \
             the authority that signed it"
        ),
        _ => format!("the server's certificate was not accepted: {err}"),
    }
}
