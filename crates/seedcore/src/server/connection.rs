//! One connection, from accept to close: the TLS handshake if any, HTTP/1.1 with keep-alive,
//! the connection's clock, and a graceful end when the server stops.
//!
//! Invariants: the connection's permit lives exactly as long as its task; a connection is
//! closed (its future dropped) the moment its clock expires; on stop, the request being
//! handled finishes and is answered before the connection closes.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use axum::{Router, body::Body};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::{Request, Response, body::Incoming, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::OwnedSemaphorePermit,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::clock::{self, Activity, RequestGuard, Timeouts, Tracked};

/// What every connection shares.
pub(super) struct Context {
    /// The application, behind the request gate.
    pub app: Router,
    /// Present when serving HTTPS.
    pub tls: Option<TlsAcceptor>,
    pub clock: Timeouts,
    /// Cancelled when the server stops.
    pub stop: CancellationToken,
}

/// Serves one accepted connection until it closes; the permit is released at the end.
pub(super) async fn serve(stream: TcpStream, permit: OwnedSemaphorePermit, context: Arc<Context>) {
    let _permit = permit;
    // Responses are written whole; waiting to fill a segment would only add latency.
    let _ = stream.set_nodelay(true);
    match &context.tls {
        None => http(stream, &context).await,
        Some(acceptor) => {
            // The handshake counts as the start of the first request.
            let handshake =
                tokio::time::timeout(context.clock.header, acceptor.accept(stream)).await;
            match handshake {
                Ok(Ok(stream)) => http(stream, &context).await,
                Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
}

async fn http<IO>(io: IO, context: &Context)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let service = Served {
        app: context.app.clone(),
        activity: activity.clone(),
    };
    let io = TokioIo::new(Tracked::new(io, activity.clone()));
    let connection = http1::Builder::new()
        .keep_alive(true)
        // The connection's clock keeps time instead (see `clock`).
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let expired = clock::expired(&activity, context.clock);
    tokio::pin!(expired);
    let mut stopping = false;
    loop {
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(err) = ended {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            why = &mut expired => {
                tracing::debug!(reason = ?why, "connection closed by its timeout");
                return;
            }
            () = context.stop.cancelled(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The application as hyper calls it, with each request tracked on the connection's clock.
struct Served {
    app: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for Served {
    type Response = Response<Tracking>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = self.activity.begin();
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(request.map(Body::new)).await?;
            guard.responding();
            Ok(response.map(|body| Tracking {
                body,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its request open on the clock until it is written or dropped.
struct Tracking {
    body: Body,
    _guard: RequestGuard,
}

impl HttpBody for Tracking {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
