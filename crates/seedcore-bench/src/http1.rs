//! An HTTP/1.1 connection of a load worker's own: one request at a time, kept alive, no pool.
//!
//! The throughput workloads measure the server beside a per-row SQL client that owns its
//! connections; a pooled HTTP client (reqwest) spends more of the shared two cores per request
//! (URL parsing, a pool checkout, its own layers) than such a client does, so the server's
//! figure would carry the client's weight. This is what `wrk` or `oha` do: a request written
//! on a connection that stays open, its whole answer read back.
//!
//! Invariant: a request succeeds only with status 200 and its whole body read.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode, Uri,
    body::Bytes,
    client::conn::http1::{self, SendRequest},
    header::{CONTENT_TYPE, HOST, HeaderValue},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{Context as _, Error, Result};

/// Longest wait for one answer, as the pooled client allows.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One open connection to the server.
pub struct HttpConn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl HttpConn {
    /// Connects to `base` (`http://host:port`).
    pub async fn open(base: &str) -> Result<HttpConn> {
        let authority = base
            .strip_prefix("http://")
            .ok_or_else(|| Error::new(format!("not an http:// address: {base}")))?
            .trim_end_matches('/');
        let stream = TcpStream::connect(authority)
            .await
            .context(format_args!("connect to {authority}"))?;
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .context("open an HTTP/1.1 connection")?;
        // Ends with the connection: when the server closes it or the sender is dropped.
        tokio::spawn(connection);
        let host = HeaderValue::from_str(authority).context("the address as a Host header")?;
        Ok(HttpConn { sender, host })
    }

    /// `count` connections to `base`, opened one after another.
    pub async fn open_many(base: &str, count: usize) -> Result<Vec<HttpConn>> {
        let mut conns = Vec::with_capacity(count);
        for _ in 0..count {
            conns.push(HttpConn::open(base).await?);
        }
        Ok(conns)
    }

    /// `GET path`; an error unless the answer is 200.
    pub async fn get(&mut self, path: &Uri) -> Result<(), String> {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body; an error unless the answer is 200.
    pub async fn post_json(&mut self, path: &Uri, body: Bytes) -> Result<(), String> {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &Uri,
        body: Option<Bytes>,
    ) -> Result<(), String> {
        let mut request = Request::builder()
            .method(method)
            .uri(path.clone())
            .header(HOST, self.host.clone());
        if body.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|err| err.to_string())?;
        let answer = async {
            self.sender.ready().await.map_err(|err| err.to_string())?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|err| err.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| err.to_string())?
                .to_bytes();
            if status != StatusCode::OK {
                let text = String::from_utf8_lossy(&body);
                return Err(format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ));
            }
            Ok(())
        };
        tokio::time::timeout(TIMEOUT, answer)
            .await
            .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
    }
}

/// A request path as the connection sends it.
pub fn path(path: &str) -> Result<Uri> {
    path.parse().context(format_args!("the path {path}"))
}
