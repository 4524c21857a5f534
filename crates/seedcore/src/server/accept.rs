//! The accept loop: takes connections off the listening socket, gives each a permit of the
//! connection cap and a task of its own, and turns away what is over the cap.
//!
//! Invariants: the loop ends only when `stop` is cancelled. An error that concerns one
//! connection (reset before it was taken) is skipped. Any other (out of file descriptors, out
//! of memory) pauses accepting with a backoff from 10 ms to 1 s, because retrying at once would
//! spin while nothing has changed; connections wait in the socket's backlog meanwhile. Both
//! kinds of trouble are logged at most once per [`LOG_EVERY`], with a count of what was not.

use std::{
    io,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::sync::CancellationToken;

use super::connection::{self, Context};

/// The shortest pause after an accept error; doubled while errors last.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause after an accept error.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// How often repeated trouble is logged.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Accepts until `stop` is cancelled.
pub(super) async fn run(
    tcp: TcpListener,
    limit: u32,
    connections: &Arc<Semaphore>,
    context: &Arc<Context>,
    stop: &CancellationToken,
) {
    let busy = busy_reply(limit);
    let mut pause = FIRST_PAUSE;
    let mut failing = Throttle::default();
    let mut full = Throttle::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = tcp.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                pause = FIRST_PAUSE;
                match connections.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(connection::serve(stream, permit, context.clone()));
                    }
                    Err(_) => {
                        if let Some(skipped) = full.ready() {
                            tracing::warn!(
                                turned_away_since_last_warning = skipped,
                                "connection limit reached (SEEDCORE_MAX_CONNECTIONS): new connections are answered 503"
                            );
                        }
                        turn_away(stream, (context.tls.is_none()).then_some(&busy[..]));
                    }
                }
            }
            Err(err) if concerns_one_connection(&err) => {}
            Err(err) => {
                if let Some(skipped) = failing.ready() {
                    tracing::warn!(error = %err, failed_since_last_warning = skipped,
                        "cannot accept connections; retrying (is the open-file limit too low?)");
                }
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
}

/// Errors about one incoming connection that vanished before it was taken.
fn concerns_one_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// The whole response a connection over the cap gets, in the contract's error shape.
fn busy_reply(limit: u32) -> Vec<u8> {
    let body =
        format!(r#"{{"detail":"Too many open connections (limit {limit}); retry shortly"}}"#);
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over the cap without waiting for it, and closes it. Over TLS there is
/// no handshake to answer in, so the connection is only closed.
fn turn_away(stream: TcpStream, reply: Option<&[u8]>) {
    let Some(reply) = reply else { return };
    // Reading what already arrived lets the close be a clean one, so the client sees the reply
    // rather than a reset. Both calls return at once; what they cannot do is skipped.
    let mut request = [0u8; 4096];
    let _ = stream.try_read(&mut request);
    let _ = stream.try_write(reply);
}

/// Lets one log line through per [`LOG_EVERY`], counting the ones it holds back.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// `Some(lines held back since the last one)` when a line may be logged now.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + LOG_EVERY) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_reply_is_a_complete_503_with_a_json_detail() {
        let reply = String::from_utf8(busy_reply(7)).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains("retry-after: 1"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let detail: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            detail["detail"],
            "Too many open connections (limit 7); retry shortly"
        );
    }

    #[test]
    fn a_throttle_lets_the_first_line_through_and_counts_the_held_back_ones() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.ready(), Some(0));
        assert_eq!(throttle.ready(), None);
        assert_eq!(throttle.ready(), None);
        throttle.last = Some(Instant::now() - LOG_EVERY);
        assert_eq!(throttle.ready(), Some(2));
    }
}
