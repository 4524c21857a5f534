//! The HTTP listener under hostile clients: the in-flight cap and the request timeout, the
//! connection cap, the header and idle timeouts, a flood of idle connections, a slowloris
//! client, running out of file descriptors, and HTTPS.
//!
//! The tests of one limit run the listener in this process on port 0, in front of a small
//! router whose handlers the test holds or releases (no database: the listener is the same
//! whatever the API does). The end-to-end tests run the real `seedcore serve` binary on the
//! embedded store.

mod common;

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Json, Router, routing::get};
use common::{process::Process, *};
use futures::StreamExt;
use seedcore::server::{Listener, ListenerSettings, TlsFiles};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Semaphore,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// A router whose `/hold` requests wait until the test releases them.
#[derive(Clone)]
struct Held {
    entered: Arc<AtomicUsize>,
    release: Arc<Semaphore>,
}

impl Held {
    fn new() -> Held {
        Held {
            entered: Arc::new(AtomicUsize::new(0)),
            release: Arc::new(Semaphore::new(0)),
        }
    }

    fn router(&self) -> Router {
        let held = self.clone();
        Router::new()
            .route(
                "/health",
                get(|| async { Json(json!({"status": "healthy"})) }),
            )
            .route("/hello", get(|| async { Json(json!({"hello": "world"})) }))
            .route(
                "/hold",
                get(move || {
                    let held = held.clone();
                    async move {
                        held.entered.fetch_add(1, Ordering::SeqCst);
                        let _permit = held.release.acquire().await;
                        Json(json!({"held": true}))
                    }
                }),
            )
    }

    async fn wait_entered(&self, count: usize) {
        eventually(
            Duration::from_secs(5),
            "requests reaching the handler",
            || async { (self.entered.load(Ordering::SeqCst) >= count).then_some(()) },
        )
        .await
    }
}

/// The listener on a free port in this process.
struct Served {
    address: SocketAddr,
    base: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

async fn serve(app: Router, settings: ListenerSettings) -> Served {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), settings)
        .await
        .expect("bind");
    let address = listener.local_addr();
    let stop = CancellationToken::new();
    let task = tokio::spawn(listener.serve(app, stop.clone()));
    Served {
        address,
        base: format!("http://{address}"),
        stop,
        task,
    }
}

fn settings() -> ListenerSettings {
    ListenerSettings::default()
}

async fn get_json(url: String) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("a response");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    (status, headers, body)
}

/// Sends a request on a raw connection and reads one response (headers and a
/// content-length body).
async fn exchange(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, stream.read(&mut chunk))
            .await
            .expect("a whole response within 10 s")
            .expect("read");
        assert!(read > 0, "closed mid-response: {text:?}");
        seen.extend_from_slice(&chunk[..read]);
    }
}

/// Waits for the server to close the connection: `Ok(elapsed)` when it does within
/// `within`, reading (and ignoring) whatever comes before.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        let left = within.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Err(_) => return Err(format!("still open after {within:?}")),
            Ok(Ok(0)) => return Ok(started.elapsed()),
            Ok(Err(err)) if err.kind() == io::ErrorKind::ConnectionReset => {
                return Ok(started.elapsed());
            }
            Ok(Err(err)) => return Err(format!("read failed: {err}")),
            Ok(Ok(_)) => {}
        }
    }
}

/// Whether the connection is still open now (nothing to read, no end of stream).
fn still_open(stream: &TcpStream) -> bool {
    let mut chunk = [0u8; 64];
    matches!(stream.try_read(&mut chunk), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
}

#[tokio::test]
async fn a_request_over_the_in_flight_cap_is_answered_503_with_retry_after() {
    let held = Held::new();
    let server = serve(
        held.router(),
        ListenerSettings {
            max_in_flight: 2,
            ..settings()
        },
    )
    .await;
    let holders: Vec<_> = (0..2)
        .map(|_| tokio::spawn(get_json(format!("{}/hold", server.base))))
        .collect();
    held.wait_entered(2).await;

    let (status, headers, body) = get_json(format!("{}/hello", server.base)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        body,
        json!({"detail": "Server busy: 2 requests in flight; retry shortly"})
    );
    let (status, _, _) = get_json(format!("{}/health", server.base)).await;
    assert_eq!(status, 200, "/health answers however busy the server is");

    held.release.add_permits(2);
    for holder in holders {
        let (status, _, body) = holder.await.unwrap();
        assert_eq!((status.as_u16(), body), (200, json!({"held": true})));
    }
    let (status, _, body) = get_json(format!("{}/hello", server.base)).await;
    assert_eq!((status.as_u16(), body), (200, json!({"hello": "world"})));
}

#[tokio::test]
async fn a_request_that_outlives_the_request_timeout_is_answered_503() {
    let held = Held::new();
    let server = serve(
        held.router(),
        ListenerSettings {
            request_timeout: Duration::from_millis(300),
            max_in_flight: 1,
            ..settings()
        },
    )
    .await;
    let started = Instant::now();
    let (status, _, body) = get_json(format!("{}/hold", server.base)).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        json!({"detail": "Request timed out after 0.3 s; it may or may not have taken effect"})
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // The timed-out request no longer holds the one place in flight.
    let (status, _, body) = get_json(format!("{}/hello", server.base)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_connection_over_the_cap_is_answered_503_and_closed() {
    let server = serve(
        Held::new().router(),
        ListenerSettings {
            max_connections: 3,
            ..settings()
        },
    )
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        assert!(
            exchange(&mut stream, "/hello")
                .await
                .starts_with("HTTP/1.1 200")
        );
        open.push(stream);
    }

    let mut extra = TcpStream::connect(server.address).await.unwrap();
    let reply = read_response(&mut extra).await;
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
    assert!(reply.contains("retry-after: 1"), "{reply}");
    assert!(
        reply.ends_with(r#"{"detail":"Too many open connections (limit 3); retry shortly"}"#),
        "{reply}"
    );
    closed_within(&mut extra, Duration::from_secs(2))
        .await
        .unwrap();

    drop(open.pop());
    eventually(
        Duration::from_secs(5),
        "a freed connection slot",
        || async {
            let mut stream = TcpStream::connect(server.address).await.ok()?;
            let reply = exchange(&mut stream, "/hello").await;
            reply.starts_with("HTTP/1.1 200").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let server = serve(
        Held::new().router(),
        ListenerSettings {
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(1500),
            ..settings()
        },
    )
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    assert!(
        exchange(&mut stream, "/hello")
            .await
            .starts_with("HTTP/1.1 200")
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(still_open(&stream), "closed before the idle timeout");
    // The same connection still serves a request, which starts its idle time again.
    assert!(
        exchange(&mut stream, "/hello")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let took = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(took >= Duration::from_millis(1300), "{took:?}");
}

#[tokio::test]
async fn a_new_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let server = serve(
        Held::new().router(),
        ListenerSettings {
            idle_timeout: Duration::from_millis(500),
            ..settings()
        },
    )
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let took = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(took >= Duration::from_millis(400), "{took:?}");
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_after_the_header_timeout() {
    let server = serve(
        Held::new().router(),
        ListenerSettings {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            ..settings()
        },
    )
    .await;
    let mut slow = TcpStream::connect(server.address).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /hello HTTP/1.1\r\n").await.unwrap();
    let mut cut_off = None;
    for n in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let header = format!("x-dribble-{n}: {n}\r\n");
        if slow.write_all(header.as_bytes()).await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        if !still_open(&slow) {
            cut_off = Some(started.elapsed());
            break;
        }
        // Others are served meanwhile.
        if n == 3 {
            let (status, _, _) = get_json(format!("{}/hello", server.base)).await;
            assert_eq!(status, 200);
        }
    }
    let cut_off = cut_off.expect("the dribbling client was never cut off");
    assert!(cut_off >= Duration::from_millis(900), "{cut_off:?}");
    assert!(cut_off < Duration::from_secs(3), "{cut_off:?}");
}

#[tokio::test]
async fn headers_that_arrive_slowly_but_within_the_header_timeout_are_answered() {
    let server = serve(
        Held::new().router(),
        ListenerSettings {
            header_timeout: Duration::from_secs(2),
            ..settings()
        },
    )
    .await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    for piece in ["GET /hel", "lo HTTP/1.1\r\n", "host: te", "st\r\n", "\r\n"] {
        stream.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let reply = read_response(&mut stream).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn stopping_lets_the_request_in_flight_finish_and_then_returns() {
    let held = Held::new();
    let server = serve(held.router(), settings()).await;
    let idle = TcpStream::connect(server.address).await.unwrap();
    let holder = tokio::spawn(get_json(format!("{}/hold", server.base)));
    held.wait_entered(1).await;

    server.stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !server.task.is_finished(),
        "returned with a request in flight"
    );
    held.release.add_permits(1);
    let (status, _, body) = holder.await.unwrap();
    assert_eq!((status.as_u16(), body), (200, json!({"held": true})));
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns once its connections are closed")
        .unwrap();
    drop(idle);
    assert!(TcpStream::connect(server.address).await.is_err());
}

// The end-to-end tests below run `seedcore serve` on the embedded store: the listener is the
// same for both stores, and this one needs no server.

/// `seedcore serve` on a fresh embedded database, with `env` added.
fn spawn_serve(db: &TestDb, env: &[(&str, &str)]) -> Process {
    let mut all = vec![("SEEDCORE_WORKER_CONCURRENCY", "0")];
    all.extend_from_slice(env);
    Process::serve(&db.url(), &all)
}

fn resident_megabytes(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kilobytes: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kilobytes / 1024.0
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Opens `count` connections, 100 at a time (fewer than the accept queue holds), within
/// `within`.
async fn open_connections(address: SocketAddr, count: usize, within: Duration) -> Vec<TcpStream> {
    let opened = futures::stream::iter(0..count)
        .map(|_| TcpStream::connect(address))
        .buffer_unordered(100)
        .collect::<Vec<_>>();
    tokio::time::timeout(within, opened)
        .await
        .expect("connections opened in time")
        .into_iter()
        .map(|stream| stream.expect("connect"))
        .collect()
}

const FLOOD: usize = 5_000;

sqlite_only!(
    a_flood_of_idle_connections_leaves_health_answering_until_the_idle_timeout_closes_them,
    flavor = "multi_thread"
);
async fn a_flood_of_idle_connections_leaves_health_answering_until_the_idle_timeout_closes_them() {
    let wanted = FLOOD as u64 + 1_000;
    let limit = rlimit::increase_nofile_limit(wanted).expect("raise the open-file limit");
    assert!(
        limit >= wanted,
        "the hard open-file limit ({limit}) is too low for a flood of {FLOOD} connections: \
         raise it to {wanted} or more (ulimit -Hn)"
    );
    let db = TestDb::create().await;
    let idle = Duration::from_secs(6);
    let mut server = spawn_serve(&db, &[("SEEDCORE_IDLE_TIMEOUT_SECONDS", "6")]);
    let base = server.wait_for_address();
    let address: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let pid = server.child.id();

    let mut flood = open_connections(address, FLOOD, Duration::from_secs(5)).await;
    let flooded_at = Instant::now();
    eventually(
        Duration::from_secs(5),
        "the server holding the flood",
        || async { (open_files(pid) >= FLOOD).then_some(()) },
    )
    .await;

    let started = Instant::now();
    let (status, _, body) = get_json(format!("{base}/health")).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy");
    assert!(took < Duration::from_secs(1), "/health took {took:?}");
    let rss = resident_megabytes(pid);
    assert!(
        rss < 150.0,
        "{rss:.1} MB resident with {FLOOD} connections open"
    );
    assert!(
        flooded_at.elapsed() < idle,
        "the checks ran past the idle timeout"
    );

    let deadline = idle + Duration::from_secs(5);
    let closed = futures::stream::iter(flood.iter_mut())
        .map(|stream| closed_within(stream, deadline))
        .buffer_unordered(FLOOD)
        .collect::<Vec<_>>()
        .await;
    let still_open = closed.iter().filter(|closed| closed.is_err()).count();
    assert_eq!(
        still_open,
        0,
        "connections left open: {:?}",
        closed.iter().find(|c| c.is_err())
    );
    assert!(flooded_at.elapsed() >= idle - Duration::from_millis(500));
    assert!(
        open_files(pid) < 500,
        "{} files still open",
        open_files(pid)
    );
    server.stop();
}

sqlite_only!(
    running_out_of_file_descriptors_pauses_accepting_but_never_stops_it,
    flavor = "multi_thread"
);
async fn running_out_of_file_descriptors_pauses_accepting_but_never_stops_it() {
    let db = TestDb::create().await;
    let mut server = spawn_serve(&db, &[]);
    let base = server.wait_for_address();
    let address: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let pid = server.child.id();
    let (status, _, _) = get_json(format!("{base}/health")).await;
    assert_eq!(status, 200);

    // Leave the running server room for a few dozen more files, then open more than that.
    let limit = open_files(pid) as u64 + 40;
    rlimit::prlimit(
        pid as _,
        rlimit::Resource::NOFILE,
        Some((limit, limit)),
        None,
    )
    .expect("lower the server's open-file limit");
    let flood = open_connections(address, 200, Duration::from_secs(10)).await;
    server.wait_for_line("cannot accept connections", Duration::from_secs(10));

    drop(flood);
    let answered = eventually(
        Duration::from_secs(10),
        "/health after the flood",
        || async {
            let response = reqwest::Client::new()
                .get(format!("{base}/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()?;
            Some(response.status())
        },
    )
    .await;
    assert_eq!(answered, 200);
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    server.stop();
}

/// A self-signed certificate for `localhost` and its key, as PEM files in `folder`.
fn certificate(
    folder: &TempFolder,
    name: &str,
) -> (TlsFiles, rustls::pki_types::CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = folder.0.join(format!("{name}.pem"));
    let key = folder.0.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (TlsFiles { cert, key }, made.cert.der().clone())
}

/// A TLS client that trusts `root` only.
fn tls_client(root: rustls::pki_types::CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

sqlite_only!(
    serve_answers_over_https_with_the_configured_certificate,
    flavor = "multi_thread"
);
async fn serve_answers_over_https_with_the_configured_certificate() {
    let folder = TempFolder::new();
    let (files, root) = certificate(&folder, "server");
    let (_, stranger) = certificate(&folder, "stranger");
    let db = TestDb::create().await;
    let cert = files.cert.display().to_string();
    let key = files.key.display().to_string();
    let mut server = spawn_serve(
        &db,
        &[("SEEDCORE_TLS_CERT", &cert), ("SEEDCORE_TLS_KEY", &key)],
    );
    let line = server.wait_for_line("listening on https://", Duration::from_secs(30));
    let address: SocketAddr = line
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address")
        .parse()
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(address).await.unwrap();
    let mut tls = tls_client(root)
        .connect(name.clone(), tcp)
        .await
        .expect("handshake");
    tls.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tls.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""status":"healthy""#), "{reply}");

    let tcp = TcpStream::connect(address).await.unwrap();
    let refused = tls_client(stranger).connect(name, tcp).await;
    assert!(
        refused.is_err(),
        "a client trusting another certificate connected"
    );

    let mut plain = TcpStream::connect(address).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("healthy"),
        "plain HTTP was served on the HTTPS port"
    );
    server.stop();
}

sqlite_only!(serve_refuses_a_certificate_without_its_key);
async fn serve_refuses_a_certificate_without_its_key() {
    let folder = TempFolder::new();
    let (files, _) = certificate(&folder, "server");
    let (other, _) = certificate(&folder, "other");
    let db = TestDb::create().await;
    let cert = files.cert.display().to_string();
    let wrong_key = other.key.display().to_string();

    let mut alone = spawn_serve(&db, &[("SEEDCORE_TLS_CERT", &cert)]);
    alone.wait_for_line(
        "give both SEEDCORE_TLS_CERT and SEEDCORE_TLS_KEY",
        Duration::from_secs(30),
    );
    assert!(!alone.wait_exit(Duration::from_secs(10)).success());

    let mut mismatched = spawn_serve(
        &db,
        &[
            ("SEEDCORE_TLS_CERT", &cert),
            ("SEEDCORE_TLS_KEY", &wrong_key),
        ],
    );
    mismatched.wait_for_line("cannot serve HTTPS with", Duration::from_secs(30));
    assert!(!mismatched.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn serve_help_lists_every_listener_setting() {
    let output = common::process::command(&["serve", "--help"], &[])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "SEEDCORE_MAX_CONNECTIONS",
        "SEEDCORE_MAX_IN_FLIGHT",
        "SEEDCORE_REQUEST_TIMEOUT_SECONDS",
        "SEEDCORE_HEADER_TIMEOUT_SECONDS",
        "SEEDCORE_IDLE_TIMEOUT_SECONDS",
        "SEEDCORE_TLS_CERT",
        "SEEDCORE_TLS_KEY",
    ] {
        assert!(
            help.contains(&format!("[env: {name}")),
            "{name} missing from --help"
        );
    }
}

#[test]
fn a_timeout_or_cap_of_zero_is_refused_before_anything_starts() {
    for (name, value, says) in [
        ("SEEDCORE_HEADER_TIMEOUT_SECONDS", "0", "out of range"),
        ("SEEDCORE_IDLE_TIMEOUT_SECONDS", "-5", "out of range"),
        (
            "SEEDCORE_REQUEST_TIMEOUT_SECONDS",
            "soon",
            "not a number of seconds",
        ),
        ("SEEDCORE_MAX_CONNECTIONS", "0", "not in 1..=1000000"),
        ("SEEDCORE_MAX_IN_FLIGHT", "0", "not in 1..=1000000"),
    ] {
        // Were the value taken, the start would fail fast on an unreachable database instead.
        let unreachable = [
            ("PG_DSN", "postgresql://nobody@127.0.0.1:1/none"),
            ("POSTGRES_POOL_TIMEOUT", "1"),
            (name, value),
        ];
        let output = common::process::command(&["serve"], &unreachable)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}={value} was accepted");
        assert!(err.contains(says), "{name}={value}: {err}");
    }
}
