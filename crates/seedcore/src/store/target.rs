//! Which database a process uses: a PostgreSQL server or the embedded SQLite file, read from
//! a URL (`postgresql://…`, `postgres://…`, `sqlite:…`), and named for logs without secrets.
//!
//! PostgreSQL's TLS settings are read as libpq reads them, first match wins: `sslmode` and
//! `sslrootcert` in the URL, then the settings beside it ([`PgTls`]: `POSTGRES_SSLMODE`,
//! `POSTGRES_SSLROOTCERT`), then `PGSSLMODE` and `PGSSLROOTCERT`; with none, `prefer`. As in
//! libpq, `require` with a root certificate verifies the chain like `verify-ca`. A root
//! certificate file is read here, once: a missing or unreadable one fails the target with the
//! setting named, before any connection is tried, and never downgrades to an unverified one.

use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, pem::PemObject};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The database a process was configured for.
pub enum DatabaseTarget {
    /// A PostgreSQL server, with the options to connect to it.
    Postgres(Box<PgConnectOptions>),
    /// The embedded store's file: from a sqlite: URL, or the data folder's default.
    Sqlite(PathBuf),
}

/// A database URL that cannot be used, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// PostgreSQL TLS settings given beside the URL; the URL's own `sslmode`/`sslrootcert` win.
#[derive(Clone, Debug, Default)]
pub struct PgTls {
    /// How much TLS to insist on (`POSTGRES_SSLMODE`).
    pub mode: Option<PgSslMode>,
    /// A PEM file of the certificate authorities to trust (`POSTGRES_SSLROOTCERT`).
    pub root_cert: Option<PathBuf>,
}

/// The `sslmode` values, in libpq's spelling.
pub const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

impl DatabaseTarget {
    /// The target a URL names: `postgresql://…`/`postgres://…`, or `sqlite:` with a file path.
    pub fn from_url(url: &str) -> Result<DatabaseTarget, TargetError> {
        DatabaseTarget::from_url_with(url, &PgTls::default())
    }

    /// The target a URL names, with TLS settings for what a PostgreSQL URL leaves out.
    pub fn from_url_with(url: &str, tls: &PgTls) -> Result<DatabaseTarget, TargetError> {
        match parse_sqlite_url(url)? {
            Some(path) => Ok(DatabaseTarget::Sqlite(path)),
            None => {
                let options = parse_postgres_url(url)?;
                let named = UrlTls::read(url);
                let options = apply_tls(options, &named.over(tls))?;
                Ok(DatabaseTarget::Postgres(Box::new(options)))
            }
        }
    }

    /// A PostgreSQL target from options built elsewhere, with its TLS settings applied.
    pub fn postgres(options: PgConnectOptions, tls: &PgTls) -> Result<DatabaseTarget, TargetError> {
        let options = apply_tls(options, &Sourced::settings(tls))?;
        Ok(DatabaseTarget::Postgres(Box::new(options)))
    }

    /// `postgresql://user@host:port/db` without the password (with `?sslmode=…` when TLS is
    /// required), or `sqlite:///absolute/path`.
    pub fn describe(&self) -> String {
        match self {
            DatabaseTarget::Postgres(options) => {
                let mode = match options.get_ssl_mode() {
                    PgSslMode::Require => "?sslmode=require",
                    PgSslMode::VerifyCa => "?sslmode=verify-ca",
                    PgSslMode::VerifyFull => "?sslmode=verify-full",
                    _ => "",
                };
                format!(
                    "postgresql://{}@{}:{}/{}{mode}",
                    options.get_username(),
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or(options.get_username())
                )
            }
            DatabaseTarget::Sqlite(path) => sqlite_url(path),
        }
    }
}

/// A root certificate file and the setting that named it, for error messages.
struct RootCert {
    path: PathBuf,
    source: &'static str,
}

/// The TLS settings that apply, the root certificate with where it came from.
struct Sourced {
    /// The URL names the mode itself (it is in the parsed options already).
    url_mode: bool,
    mode: Option<PgSslMode>,
    root_cert: Option<RootCert>,
}

impl Sourced {
    /// From the settings beside the URL alone.
    fn settings(tls: &PgTls) -> Sourced {
        Sourced {
            url_mode: false,
            mode: tls.mode,
            root_cert: tls.root_cert.clone().map(|path| RootCert {
                path,
                source: "POSTGRES_SSLROOTCERT",
            }),
        }
    }
}

/// The TLS parameters a PostgreSQL URL names itself (under any of sqlx's spellings).
#[derive(Debug, Default, PartialEq)]
struct UrlTls {
    names_mode: bool,
    root_cert: Option<PathBuf>,
}

impl UrlTls {
    fn read(url: &str) -> UrlTls {
        let mut named = UrlTls::default();
        let Ok(parsed) = url::Url::parse(url) else {
            return named;
        };
        for (key, value) in parsed.query_pairs() {
            match &*key {
                "sslmode" | "ssl-mode" => named.names_mode = true,
                "sslrootcert" | "ssl-root-cert" | "ssl-ca" => {
                    named.root_cert = Some(PathBuf::from(&*value));
                }
                _ => {}
            }
        }
        named
    }

    /// The URL's own parameters first, the settings beside it for the rest. The URL's mode is
    /// already in the parsed options, so only a mode it leaves out is carried.
    fn over(self, tls: &PgTls) -> Sourced {
        let beside = Sourced::settings(tls);
        Sourced {
            url_mode: self.names_mode,
            mode: if self.names_mode { None } else { beside.mode },
            root_cert: match self.root_cert {
                Some(path) => Some(RootCert {
                    path,
                    source: "sslrootcert in the database URL",
                }),
                None => beside.root_cert,
            },
        }
    }
}

/// Sets the mode and loads the root certificate; falls back to PGSSLMODE/PGSSLROOTCERT.
fn apply_tls(
    mut options: PgConnectOptions,
    tls: &Sourced,
) -> Result<PgConnectOptions, TargetError> {
    match &tls.mode {
        Some(mode) => options = options.ssl_mode(*mode),
        None if !tls.url_mode => check_environment_mode()?,
        None => {}
    }
    let root = match &tls.root_cert {
        Some(root) => Some(read_root_cert(&root.path, root.source)?),
        None => environment_root_cert()?,
    };
    if let Some(pem) = root {
        options = options.ssl_root_cert_from_pem(pem);
        if matches!(options.get_ssl_mode(), PgSslMode::Require) {
            options = options.ssl_mode(PgSslMode::VerifyCa);
        }
    }
    Ok(options)
}

/// sqlx reads PGSSLMODE itself but ignores a value it does not know, which would quietly
/// weaken a connection meant to be verified.
fn check_environment_mode() -> Result<(), TargetError> {
    match std::env::var("PGSSLMODE") {
        Ok(value) => parse_ssl_mode(&value)
            .map(drop)
            .map_err(|why| TargetError(format!("PGSSLMODE: {why}"))),
        Err(_) => Ok(()),
    }
}

/// PGSSLROOTCERT, as libpq reads it (sqlx also takes an inline PEM there).
fn environment_root_cert() -> Result<Option<Vec<u8>>, TargetError> {
    let Some(value) = std::env::var_os("PGSSLROOTCERT") else {
        return Ok(None);
    };
    let text = value.to_string_lossy();
    if text.trim_start().starts_with("-----BEGIN") {
        let pem = text.as_bytes().to_vec();
        check_certificates(&pem).map_err(|why| TargetError(format!("PGSSLROOTCERT: {why}")))?;
        return Ok(Some(pem));
    }
    read_root_cert(Path::new(&value), "PGSSLROOTCERT").map(Some)
}

/// The PEM file's bytes, once it holds at least one certificate and nothing unreadable.
fn read_root_cert(path: &Path, source: &str) -> Result<Vec<u8>, TargetError> {
    let pem = std::fs::read(path).map_err(|err| {
        TargetError(format!(
            "{source}: cannot read the root certificate {}: {err}",
            path.display()
        ))
    })?;
    check_certificates(&pem)
        .map_err(|why| TargetError(format!("{source}: {}: {why}", path.display())))?;
    Ok(pem)
}

fn check_certificates(pem: &[u8]) -> Result<(), String> {
    let mut count = 0;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        certificate.map_err(|err| format!("not a PEM certificate file ({err})"))?;
        count += 1;
    }
    if count == 0 {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(())
}

/// An `sslmode` value in libpq's spelling (any case).
pub fn parse_ssl_mode(value: &str) -> Result<PgSslMode, String> {
    let value = value.trim();
    if !SSL_MODES.contains(&value.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "unknown sslmode '{value}'; use one of {}",
            SSL_MODES.join(", ")
        ));
    }
    value.parse().map_err(|err: sqlx::Error| err.to_string())
}

fn sqlite_url(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
    format!("sqlite://{}", absolute.display())
}

/// The file a `sqlite:` URL names, None for a URL of another scheme. `sqlite:///abs/x.db` and
/// `sqlite:/abs/x.db` are absolute, `sqlite://x.db` and `sqlite:x.db` relative to the current
/// folder; a `?query` is ignored. An in-memory database is refused: the store opens the file
/// from several connections, which would each see a database of their own.
fn parse_sqlite_url(url: &str) -> Result<Option<PathBuf>, TargetError> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(None);
    };
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if path.is_empty() || path == ":memory:" {
        return Err(TargetError(
            "the sqlite: URL must name a database file, e.g. sqlite:///var/lib/seedcore/seedcore.db"
                .into(),
        ));
    }
    Ok(Some(PathBuf::from(path)))
}

fn parse_postgres_url(url: &str) -> Result<PgConnectOptions, TargetError> {
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !scheme_ok {
        return Err(TargetError(
            "the database URL must start with postgresql://, postgres:// or sqlite:".into(),
        ));
    }
    url.parse::<PgConnectOptions>()
        .map(|options| options.application_name("seedcore"))
        .map_err(|err| TargetError(format!("the database URL is not valid: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(target: DatabaseTarget) -> PgConnectOptions {
        match target {
            DatabaseTarget::Postgres(options) => *options,
            DatabaseTarget::Sqlite(_) => panic!("expected a postgres target"),
        }
    }

    fn mode(target: DatabaseTarget) -> String {
        format!("{:?}", options(target).get_ssl_mode())
    }

    #[test]
    fn the_url_names_its_own_tls_parameters_in_any_spelling() {
        let named = UrlTls::read("postgresql://h/d?ssl-mode=require&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(
            named,
            UrlTls {
                names_mode: true,
                root_cert: Some(PathBuf::from("/etc/ca.pem"))
            }
        );
        assert_eq!(UrlTls::read("postgresql://h/d"), UrlTls::default());
    }

    #[test]
    fn the_url_sslmode_wins_over_the_setting_beside_it() {
        let tls = PgTls {
            mode: Some(PgSslMode::Disable),
            root_cert: None,
        };
        let target =
            DatabaseTarget::from_url_with("postgresql://h/d?sslmode=verify-full", &tls).unwrap();
        assert_eq!(mode(target), "VerifyFull");
        let target = DatabaseTarget::from_url_with("postgresql://h/d", &tls).unwrap();
        assert_eq!(mode(target), "Disable");
    }

    #[test]
    fn a_missing_root_certificate_names_the_setting_and_the_file() {
        let tls = PgTls {
            mode: Some(PgSslMode::VerifyFull),
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        let err = DatabaseTarget::from_url_with("postgresql://h/d", &tls)
            .err()
            .unwrap()
            .0;
        assert!(
            err.starts_with("POSTGRES_SSLROOTCERT: cannot read"),
            "{err}"
        );
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");

        let err = DatabaseTarget::from_url("postgresql://h/d?sslrootcert=/nonexistent/x.pem")
            .err()
            .unwrap()
            .0;
        assert!(err.starts_with("sslrootcert in the database URL"), "{err}");
    }

    #[test]
    fn a_root_certificate_file_without_a_certificate_is_refused() {
        let path = std::env::temp_dir().join(format!("seedcore-notpem-{}", std::process::id()));
        std::fs::write(&path, "just some text\n").unwrap();
        let tls = PgTls {
            mode: None,
            root_cert: Some(path.clone()),
        };
        let err = DatabaseTarget::from_url_with("postgresql://h/d", &tls)
            .err()
            .unwrap()
            .0;
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn ssl_modes_parse_in_libpq_spelling_and_unknown_ones_are_listed() {
        assert!(matches!(
            parse_ssl_mode("verify-full"),
            Ok(PgSslMode::VerifyFull)
        ));
        assert!(matches!(parse_ssl_mode("Require"), Ok(PgSslMode::Require)));
        let err = parse_ssl_mode("verify").unwrap_err();
        assert!(
            err.contains("'verify'") && err.contains("verify-ca"),
            "{err}"
        );
    }

    #[test]
    fn a_required_connection_is_described_with_its_mode() {
        let target = DatabaseTarget::from_url("postgresql://u:secret@h:5433/d?sslmode=require");
        let described = target.unwrap().describe();
        assert_eq!(described, "postgresql://u@h:5433/d?sslmode=require");
    }
}
