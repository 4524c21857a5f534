//! The HTTP listener of `seedcore serve`: it accepts connections, serves HTTP/1.1 on them
//! (over TLS when a certificate and key are configured), and holds every limit that protects
//! the process from its clients.
//!
//! The limits, each with a clear answer:
//! - at most `max_connections` open connections: one more is answered 503 with `Retry-After`
//!   and closed ([`accept`]);
//! - at most `max_in_flight` requests handled at once, and each within `request_timeout`:
//!   beyond them 503 in the contract's `{"detail": …}` shape ([`gate`]);
//! - a request's headers must arrive within `header_timeout` of their first byte, and a
//!   connection with no request on it is closed after `idle_timeout` ([`clock`]);
//! - an accept error (out of file descriptors, say) pauses accepting, with a backoff, and
//!   never ends it ([`accept`]).
//!
//! Invariants: every connection holds one permit of the connection semaphore for as long as
//! its task lives, so waiting for all permits is waiting for every connection to end; a
//! connection is never left without a deadline unless a request is being handled on it, and
//! that request is bounded by the request timeout.

mod accept;
mod clock;
mod connection;
mod files;
pub mod gate;
mod tls;

use std::{io, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::Router;
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::Semaphore,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;

pub use tls::TlsError;

/// How the listener treats its clients; [`ListenerSettings::default`] has the defaults of
/// `seedcore serve`.
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    /// Most connections open at once.
    pub max_connections: u32,
    /// Most requests handled at once (`/health` aside).
    pub max_in_flight: u32,
    /// Longest a request may take from its headers to its response.
    pub request_timeout: Duration,
    /// Longest a request's headers may take from their first byte.
    pub header_timeout: Duration,
    /// Longest a connection may stay open with no request on it.
    pub idle_timeout: Duration,
    /// The certificate chain and key to serve HTTPS with; plain HTTP without.
    pub tls: Option<TlsFiles>,
}

/// The PEM files HTTPS is served with.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// The private key of the first certificate.
    pub key: PathBuf,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            max_connections: 10_000,
            max_in_flight: 512,
            request_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            tls: None,
        }
    }
}

impl ListenerSettings {
    /// The settings `seedcore serve` was given; a certificate without a key (or the reverse)
    /// is refused.
    pub fn from_config(config: &ServerConfig) -> Result<ListenerSettings, ListenError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            _ => return Err(ListenError::Tls(TlsError::Incomplete)),
        };
        Ok(ListenerSettings {
            max_connections: config.max_connections,
            max_in_flight: config.max_in_flight,
            request_timeout: Duration::from_secs_f64(config.request_timeout_seconds),
            header_timeout: Duration::from_secs_f64(config.header_timeout_seconds),
            idle_timeout: Duration::from_secs_f64(config.idle_timeout_seconds),
            tls,
        })
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address could not be bound (in use, not ours, no permission).
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// What the system said.
        source: io::Error,
    },
    /// The certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Connections the kernel may hold for the accept loop (it caps this at `somaxconn`). A
/// burst of connections beyond the queue is dropped by the kernel, in ways a client may not
/// notice, so the queue is longer than the default of 1024.
const BACKLOG: u32 = 4096;

/// A listening socket on `address`, as `TcpListener::bind` makes it but with [`BACKLOG`].
fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// A bound listening socket with its settings, ready to serve.
pub struct Listener {
    tcp: TcpListener,
    address: SocketAddr,
    tls: Option<TlsAcceptor>,
    settings: ListenerSettings,
}

impl Listener {
    /// Binds `address` (port 0 picks a free port), loads the certificate and key if any, and
    /// raises the process's open-file limit as far as it may go.
    pub async fn bind(
        address: SocketAddr,
        settings: ListenerSettings,
    ) -> Result<Listener, ListenError> {
        let tls = settings.tls.as_ref().map(tls::acceptor).transpose()?;
        let bind_error = |source| ListenError::Bind { address, source };
        let tcp = listen(address).map_err(bind_error)?;
        let address = tcp.local_addr().map_err(bind_error)?;
        files::raise_limit(settings.max_connections);
        Ok(Listener {
            tcp,
            address,
            tls,
            settings,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The base URL clients reach the listener at: `http://…` or `https://…`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// Serves `app` until `stop` is cancelled; then stops accepting, lets each connection
    /// finish the request it is handling, and returns once every connection has closed.
    pub async fn serve(self, app: Router, stop: CancellationToken) {
        let url = self.url();
        tracing::info!(address = %self.local_addr(), version = crate::VERSION, "seedcore listening on {url}");
        let settings = self.settings;
        let connections = Arc::new(Semaphore::new(settings.max_connections as usize));
        let context = Arc::new(connection::Context {
            app: gate::guard(app, &settings),
            tls: self.tls,
            clock: clock::Timeouts {
                header: settings.header_timeout,
                idle: settings.idle_timeout,
            },
            stop: stop.clone(),
        });
        accept::run(
            self.tcp,
            settings.max_connections,
            &connections,
            &context,
            &stop,
        )
        .await;
        // Every connection task holds one permit until it ends.
        let _ = connections.acquire_many(settings.max_connections).await;
    }
}
