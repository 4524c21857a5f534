//! PostgreSQL over TLS: a private cluster started from the server binaries, with a certificate
//! the test makes for `localhost` and `hostssl` lines only in its pg_hba.conf, so a connection
//! without TLS is refused; and one without TLS at all, for a client that insists on it. Each
//! cluster is shared by the tests that run at once and stopped when the last of them ends.

mod certs;
mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Weak},
};

use common::*;
use seedcore::store::{self, DatabaseTarget, OpenError, PgTls};
use sqlx::{ConnectOptions, postgres::PgSslMode};
use tokio::sync::Mutex;

/// A running PostgreSQL that takes TLS connections only (or, if `plain`, none).
struct Cluster {
    plain: bool,
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The authority that signed the server's certificate.
    ca: PathBuf,
    /// An authority that signed nothing the server has.
    wrong_ca: PathBuf,
}

static CLUSTER: Mutex<Weak<Cluster>> = Mutex::const_new(Weak::new());
static PLAIN_CLUSTER: Mutex<Weak<Cluster>> = Mutex::const_new(Weak::new());

/// The shared TLS-only cluster, started when no test holds it; None (after saying why) when
/// this machine has no PostgreSQL server binaries and none is required.
async fn cluster() -> Option<Arc<Cluster>> {
    shared(&CLUSTER, false).await
}

/// The shared cluster without TLS.
async fn plain_cluster() -> Option<Arc<Cluster>> {
    shared(&PLAIN_CLUSTER, true).await
}

async fn shared(cell: &Mutex<Weak<Cluster>>, plain: bool) -> Option<Arc<Cluster>> {
    let mut shared = cell.lock().await;
    if let Some(cluster) = shared.upgrade() {
        return Some(cluster);
    }
    let started = tokio::task::spawn_blocking(move || Cluster::start(plain))
        .await
        .unwrap();
    match started {
        Ok(cluster) => {
            let cluster = Arc::new(cluster);
            *shared = Arc::downgrade(&cluster);
            Some(cluster)
        }
        Err(why) if std::env::var("SEEDCORE_TEST_REQUIRE_POSTGRES").is_err() => {
            eprintln!("SKIPPED ({why})");
            None
        }
        Err(why) => panic!("SEEDCORE_TEST_REQUIRE_POSTGRES is set, but: {why}"),
    }
}

impl Cluster {
    fn start(plain: bool) -> Result<Cluster, String> {
        let bin = server_binaries().ok_or("no PostgreSQL server binaries (initdb, pg_ctl)")?;
        let dir = PathBuf::from(format!(
            "/tmp/seedcore-tls-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = certs::issue(&["localhost"]);
        let other = certs::issue(&["localhost"]);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca = write("ca.pem", &pki.ca_pem);
        let wrong_ca = write("wrong-ca.pem", &other.ca_pem);
        write("server.crt", &pki.cert_pem);
        let key = write("server.key", &pki.key_pem);
        // The server refuses a key that others may read.
        run(Command::new("chmod").arg("600").arg(&key))?;
        let cluster = Cluster {
            plain,
            dir,
            bin,
            port: free_port(),
            ca,
            wrong_ca,
        };
        cluster.init_and_start()?;
        Ok(cluster)
    }

    fn init_and_start(&self) -> Result<(), String> {
        if running_as_root() {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres")
                .arg(&self.dir))?;
        }
        let data = self.dir.join("data");
        run(self.as_owner("initdb").arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
        ]))?;
        let (host, ssl) = if self.plain {
            ("host", "-c ssl=off".to_string())
        } else {
            let dir = self.dir.display();
            let files = format!("ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key");
            ("hostssl", format!("-c ssl=on -c {files}"))
        };
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("local all all trust\n{host} all all 127.0.0.1/32 trust\n"),
        )
        .unwrap();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {ssl}",
            self.port,
            self.dir.display()
        );
        run(self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-o", &options, "start"]))
    }

    /// One of the server binaries, run as the cluster's owner (PostgreSQL refuses root).
    fn as_owner(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.current_dir(&self.dir);
        command
    }

    /// `postgresql://postgres@{host}:{port}/postgres{query}`.
    fn url(&self, host: &str, query: &str) -> String {
        format!("postgresql://postgres@{host}:{}/postgres{query}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn server_binaries() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    dirs.sort_by_key(|bin| {
        let version = bin.parent().and_then(Path::file_name);
        version.and_then(|v| v.to_str()?.parse::<u32>().ok())
    });
    dirs.pop()
}

fn running_as_root() -> bool {
    let id = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|err| format!("{command:?}: {err}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Whether a connection to `target` is encrypted, as the server sees it.
async fn encrypted(target: DatabaseTarget) -> bool {
    let DatabaseTarget::Postgres(options) = target else {
        panic!("expected a postgres target")
    };
    let mut connection = options.connect().await.unwrap();
    sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

/// Why opening the store at `url` fails; panics when it opens.
async fn refusal(url: &str) -> String {
    match store::open(url, 2).await {
        Ok(_) => panic!("{url} opened"),
        Err(OpenError::Tls(why)) => why,
        Err(other) => panic!("{url}: expected a TLS failure, got: {other}"),
    }
}

postgres_only!(require_connects_over_tls_without_checking_the_certificate);
async fn require_connects_over_tls_without_checking_the_certificate() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let url = cluster.url("127.0.0.1", "?sslmode=require");
    assert!(encrypted(DatabaseTarget::from_url(&url).unwrap()).await);
    let store = store::open(&url, 2).await.unwrap();
    assert_eq!(store.backend(), "postgres");
    store.close().await;
}

postgres_only!(verify_full_with_the_right_root_opens_and_migrates_the_store);
async fn verify_full_with_the_right_root_opens_and_migrates_the_store() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let query = format!("?sslmode=verify-full&sslrootcert={}", cluster.ca.display());
    let url = cluster.url("localhost", &query);
    assert!(encrypted(DatabaseTarget::from_url(&url).unwrap()).await);
    let store = store::open(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.verify().await.unwrap().is_empty());
    store.close().await;

    // The same, from the settings beside a URL that names no TLS parameter.
    let tls = PgTls {
        mode: Some(PgSslMode::VerifyFull),
        root_cert: Some(cluster.ca.clone()),
    };
    let target = DatabaseTarget::from_url_with(&cluster.url("localhost", ""), &tls).unwrap();
    assert!(encrypted(target).await);
}

postgres_only!(verify_full_with_a_wrong_root_fails_saying_the_certificate_does_not_verify);
async fn verify_full_with_a_wrong_root_fails_saying_the_certificate_does_not_verify() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let query = format!(
        "?sslmode=verify-full&sslrootcert={}",
        cluster.wrong_ca.display()
    );
    let why = refusal(&cluster.url("localhost", &query)).await;
    assert!(why.contains("does not verify"), "{why}");
    assert!(why.contains("sslrootcert"), "{why}");
    // Without a root of its own, the built-in public roots do not know the test authority.
    let why = refusal(&cluster.url("localhost", "?sslmode=verify-ca")).await;
    assert!(why.contains("does not verify"), "{why}");
}

postgres_only!(verify_full_with_a_host_name_the_certificate_lacks_fails_naming_the_host);
async fn verify_full_with_a_host_name_the_certificate_lacks_fails_naming_the_host() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let root = format!("&sslrootcert={}", cluster.ca.display());
    let why = refusal(&cluster.url("127.0.0.1", &format!("?sslmode=verify-full{root}"))).await;
    assert!(
        why.contains("not valid for the host name '127.0.0.1'"),
        "{why}"
    );
    // verify-ca checks the chain but not the name: the same connection is accepted.
    let url = cluster.url("127.0.0.1", &format!("?sslmode=verify-ca{root}"));
    assert!(encrypted(DatabaseTarget::from_url(&url).unwrap()).await);
}

postgres_only!(require_with_a_root_certificate_verifies_the_chain_as_libpq_does);
async fn require_with_a_root_certificate_verifies_the_chain_as_libpq_does() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let query = format!(
        "?sslmode=require&sslrootcert={}",
        cluster.wrong_ca.display()
    );
    let why = refusal(&cluster.url("127.0.0.1", &query)).await;
    assert!(why.contains("does not verify"), "{why}");
}

postgres_only!(a_plain_connection_is_refused_by_a_tls_only_server_with_a_clear_error);
async fn a_plain_connection_is_refused_by_a_tls_only_server_with_a_clear_error() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let why = refusal(&cluster.url("127.0.0.1", "?sslmode=disable")).await;
    assert!(why.contains("accepts only encrypted connections"), "{why}");
    assert!(why.contains("sslmode"), "{why}");
}

postgres_only!(the_binary_takes_tls_from_the_postgres_settings_and_from_pgsslmode);
async fn the_binary_takes_tls_from_the_postgres_settings_and_from_pgsslmode() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let port = cluster.port.to_string();
    let (ca, wrong_ca) = (cluster.ca.display(), cluster.wrong_ca.display());
    let (ca, wrong_ca) = (ca.to_string(), wrong_ca.to_string());
    let settings = |root: &str| {
        process::command(
            &["db", "init"],
            &[
                ("POSTGRES_HOST", "localhost"),
                ("POSTGRES_PORT", &port),
                ("POSTGRES_SSLMODE", "verify-full"),
                ("POSTGRES_SSLROOTCERT", root),
            ],
        )
        .output()
        .unwrap()
    };
    let refused = settings(&wrong_ca);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("sslmode=verify-full") && stderr.contains("does not verify"),
        "{stderr}"
    );
    let accepted = settings(&ca);
    let stdout = String::from_utf8_lossy(&accepted.stdout);
    assert!(
        accepted.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    assert!(stdout.contains("?sslmode=verify-full ("), "{stdout}");

    let dsn = cluster.url("127.0.0.1", "");
    let environment = |mode: &str| {
        process::command(
            &["db", "init"],
            &[
                ("PG_DSN", dsn.as_str()),
                ("PGSSLMODE", mode),
                ("PGSSLROOTCERT", &ca),
            ],
        )
        .output()
        .unwrap()
    };
    let refused = environment("verify-full");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("not valid for the host name"), "{stderr}");
    assert!(environment("verify-ca").status.success());
    let unknown = environment("verify");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("PGSSLMODE: unknown sslmode 'verify'"),
        "{stderr}"
    );
}

postgres_only!(requiring_tls_from_a_server_without_it_fails_saying_the_server_refuses_tls);
async fn requiring_tls_from_a_server_without_it_fails_saying_the_server_refuses_tls() {
    let Some(cluster) = plain_cluster().await else {
        return;
    };
    let why = refusal(&cluster.url("127.0.0.1", "?sslmode=require")).await;
    assert!(why.contains("does not accept TLS connections"), "{why}");
    // prefer falls back to a plain connection, as libpq's default does.
    let url = cluster.url("127.0.0.1", "?sslmode=prefer");
    assert!(!encrypted(DatabaseTarget::from_url(&url).unwrap()).await);
}
