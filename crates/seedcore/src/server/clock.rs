//! Each connection's clock: what the connection is doing, and when it must be closed.
//!
//! A connection is in one phase at a time, and each phase but one has a deadline:
//! - *idle*, with no request on it (a new connection before its first byte, a kept-alive one
//!   between requests): closed `idle` after it became idle;
//! - *head*, a request's headers arriving: closed `header` after their first byte, however
//!   slowly the bytes keep coming (a slowloris client);
//! - *handling*, a request in the handler: no deadline here, the request timeout bounds it;
//! - *responding*, the response being written: closed when the client has taken none of it
//!   for `idle`.
//!
//! hyper's own header timer cannot do this: it starts as soon as a connection waits for a
//! request, so it would make the idle timeout and the header timeout one and the same.
//!
//! Invariants: the phase changes only through [`Tracked`] (bytes read or written), the
//! [`RequestGuard`] of a request (begun, responding, ended), and every change that moves a
//! deadline wakes the watcher ([`expired`]), which re-reads the phase after every wake-up.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::Instant,
};

/// The two lengths the clock works with.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    /// From a request's first byte to the end of its headers.
    pub header: Duration,
    /// With no request on the connection, or no response taken by the client.
    pub idle: Duration,
}

/// Why a connection was closed by its clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expiry {
    /// No request came within the idle timeout.
    Idle,
    /// A request's headers did not arrive within the header timeout.
    SlowHeaders,
    /// The client stopped taking its response.
    StalledResponse,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Idle { since: Instant },
    Head { since: Instant },
    Handling,
    Responding { progress: Instant },
}

struct State {
    phase: Phase,
    requests: usize,
}

/// What one connection is doing, shared by its IO, its requests and its watcher.
pub(super) struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    /// A connection just accepted: idle until its first byte.
    pub(super) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: Mutex::new(State {
                phase: Phase::Idle {
                    since: Instant::now(),
                },
                requests: 0,
            }),
            changed: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is plain data, valid whatever a panicking holder was doing.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_some(&self) {
        let mut state = self.state();
        if let Phase::Idle { .. } = state.phase {
            state.phase = Phase::Head {
                since: Instant::now(),
            };
            drop(state);
            self.changed.notify_one();
        }
    }

    fn wrote_some(&self) {
        let mut state = self.state();
        if let Phase::Responding { progress } = &mut state.phase {
            *progress = Instant::now();
        }
    }

    /// A request's headers have arrived and it goes to the handler.
    pub(super) fn begin(self: &Arc<Self>) -> RequestGuard {
        let mut state = self.state();
        state.requests += 1;
        state.phase = Phase::Handling;
        drop(state);
        self.changed.notify_one();
        RequestGuard {
            activity: self.clone(),
        }
    }

    fn deadline(&self, timeouts: Timeouts) -> Option<(Instant, Expiry)> {
        match self.state().phase {
            Phase::Idle { since } => Some((since + timeouts.idle, Expiry::Idle)),
            Phase::Head { since } => Some((since + timeouts.header, Expiry::SlowHeaders)),
            Phase::Handling => None,
            Phase::Responding { progress } => {
                Some((progress + timeouts.idle, Expiry::StalledResponse))
            }
        }
    }
}

/// Resolves when the connection has overrun the deadline of its phase.
pub(super) async fn expired(activity: &Activity, timeouts: Timeouts) -> Expiry {
    loop {
        // `notify_one` keeps a wake-up for a watcher not yet waiting, so a change between
        // reading the deadline and waiting is not lost.
        match activity.deadline(timeouts) {
            None => activity.changed.notified().await,
            Some((at, why)) if Instant::now() >= at => return why,
            Some((at, _)) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = activity.changed.notified() => {}
                }
            }
        }
    }
}

/// One request on the connection, from its headers until its response is written (or
/// abandoned); the connection is idle again once every guard is dropped.
pub(super) struct RequestGuard {
    activity: Arc<Activity>,
}

impl RequestGuard {
    /// The handler has answered; the response is being written.
    pub(super) fn responding(&self) {
        let mut state = self.activity.state();
        state.phase = Phase::Responding {
            progress: Instant::now(),
        };
        drop(state);
        self.activity.changed.notify_one();
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut state = self.activity.state();
        state.requests = state.requests.saturating_sub(1);
        if state.requests == 0 {
            state.phase = Phase::Idle {
                since: Instant::now(),
            };
        }
        drop(state);
        self.activity.changed.notify_one();
    }
}

/// A connection's byte stream, telling its [`Activity`] when bytes move.
pub(super) struct Tracked<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO> Tracked<IO> {
    pub(super) fn new(io: IO, activity: Arc<Activity>) -> Tracked<IO> {
        Tracked { io, activity }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled
            && written > 0
        {
            self.activity.wrote_some();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = polled
            && written > 0
        {
            self.activity.wrote_some();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header: Duration::from_secs(2),
        idle: Duration::from_secs(5),
    };

    fn why(activity: &Activity) -> Option<Expiry> {
        activity.deadline(TIMEOUTS).map(|(_, why)| why)
    }

    #[test]
    fn a_connection_goes_idle_head_handling_responding_and_idle_again() {
        let activity = Activity::new();
        assert_eq!(why(&activity), Some(Expiry::Idle));
        activity.read_some();
        assert_eq!(why(&activity), Some(Expiry::SlowHeaders));
        let request = activity.begin();
        assert_eq!(
            why(&activity),
            None,
            "a handled request has no clock deadline"
        );
        activity.read_some();
        assert_eq!(
            why(&activity),
            None,
            "a request body does not restart the head clock"
        );
        request.responding();
        assert_eq!(why(&activity), Some(Expiry::StalledResponse));
        drop(request);
        assert_eq!(why(&activity), Some(Expiry::Idle));
    }

    #[test]
    fn the_head_deadline_runs_from_the_first_byte_not_the_last() {
        let activity = Activity::new();
        activity.read_some();
        let (first, _) = activity.deadline(TIMEOUTS).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        activity.read_some();
        assert_eq!(activity.deadline(TIMEOUTS).unwrap().0, first);
    }

    #[test]
    fn writing_the_response_pushes_its_deadline_back() {
        let activity = Activity::new();
        let request = activity.begin();
        request.responding();
        let (before, _) = activity.deadline(TIMEOUTS).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        activity.wrote_some();
        assert!(activity.deadline(TIMEOUTS).unwrap().0 > before);
    }

    #[tokio::test]
    async fn the_watcher_follows_the_phase_to_its_deadline() {
        let short = Timeouts {
            header: Duration::from_millis(50),
            idle: Duration::from_millis(400),
        };
        let activity = Activity::new();
        let started = Instant::now();
        let watcher = expired(&activity, short);
        tokio::pin!(watcher);
        // Idle, then the first byte arrives: the shorter header deadline applies from then.
        tokio::select! {
            why = &mut watcher => panic!("expired too early: {why:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => activity.read_some(),
        }
        assert_eq!(watcher.await, Expiry::SlowHeaders);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(70), "{took:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
    }
}
