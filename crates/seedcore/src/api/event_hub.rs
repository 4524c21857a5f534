//! The event hub: one per process, it follows the audit trail and fans each new event out to
//! the event-stream subscribers whose filter it matches.
//!
//! How it follows the trail. The hub runs only while at least one subscriber is connected:
//! the first one starts it at the latest event, the last one leaving stops it, so a process
//! nobody watches pays nothing. While running it reads `seq > cursor order by seq limit N`
//! (one indexed read) when this process's store signals a change it made or heard of (new
//! ready work, a cancel: `Store::watch`, which on PostgreSQL includes other processes'
//! NOTIFYs), and otherwise every `poll` (a quarter second by default), which is what brings
//! completions and other processes' changes that send no NOTIFY. Nothing is added to the
//! writing paths: the triggers that write the trail stay as they are, and claims and
//! completions at full rate send no more notifications than before.
//!
//! Gaps. A `seq` is assigned when its event is inserted, not when it commits, so on PostgreSQL
//! a reader can see N+1 before a slower transaction commits N. The hub never moves its cursor
//! past a missing `seq` at once: it delivers up to the gap and waits for it to fill, for
//! `gap_wait` at most (2 s by default), then skips it: the `seq` of a rolled-back transaction
//! or of a task deleted meanwhile never comes. Events therefore go out in `seq` order, and a
//! subscriber that resumes after N (`Last-Event-ID`) misses nothing that committed within the
//! wait. SQLite has one writer, so its events commit in order.
//!
//! Back-pressure. Each subscriber has a bounded channel (`buffer` events); when it is full the
//! subscriber is dropped (its stream ends, marked so) rather than buffered: a client that does
//! not read costs at most `buffer` events of memory, and may resume with `Last-Event-ID`.
//!
//! Invariants: `cursor` is the greatest `seq` every subscriber has been offered (all lower
//! ones offered or skipped); a subscriber is registered, under the lock, only at the cursor,
//! after reading the trail up to it itself, so it sees every event once.

use std::{
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{DynStore, EVENT_PAGE, StoreResult, TaskChange};

/// How the hub follows the trail and how much it holds per subscriber.
#[derive(Clone, Debug)]
pub struct EventSettings {
    /// Time between heartbeat comments on an idle stream.
    pub heartbeat: Duration,
    /// Events held for a subscriber that has not taken them; one more drops it.
    pub buffer: usize,
    /// Time between reads of the trail when nothing woke the hub.
    pub poll: Duration,
    /// Longest wait for a missing `seq` to commit before it is skipped.
    pub gap_wait: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            heartbeat: Duration::from_secs(15),
            buffer: 1024,
            poll: Duration::from_millis(250),
            gap_wait: Duration::from_secs(2),
        }
    }
}

/// Which events a subscriber wants; every given field must match.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub task_id: Option<Uuid>,
    pub queue: Option<String>,
    pub task_type: Option<String>,
    pub workflow_id: Option<Uuid>,
}

impl EventFilter {
    pub fn matches(&self, change: &TaskChange) -> bool {
        self.task_id.is_none_or(|id| id == change.task_id)
            && self
                .queue
                .as_ref()
                .is_none_or(|q| change.queue.as_ref() == Some(q))
            && self
                .task_type
                .as_ref()
                .is_none_or(|t| change.task_type.as_ref() == Some(t))
            && self
                .workflow_id
                .is_none_or(|w| change.workflow_id == Some(w))
    }
}

/// A registered subscriber's end of the hub.
pub struct Live {
    pub events: mpsc::Receiver<Arc<TaskChange>>,
    /// Set when the hub dropped the subscriber for not keeping up.
    pub dropped: Arc<AtomicBool>,
}

struct Subscriber {
    filter: EventFilter,
    sender: mpsc::Sender<Arc<TaskChange>>,
    dropped: Arc<AtomicBool>,
}

#[derive(Default)]
struct Inner {
    /// None while the hub is stopped.
    cursor: Option<i64>,
    subscribers: Vec<Subscriber>,
    /// Cancels the running hub's loop and its store watch.
    stop: Option<CancellationToken>,
    /// Set when the server stops: streams end and no new one starts.
    closed: bool,
}

/// One per process; see the module docs.
pub struct EventHub {
    store: DynStore,
    settings: EventSettings,
    inner: Mutex<Inner>,
    wake: Arc<Notify>,
}

impl EventHub {
    /// A stopped hub over `store`; the first subscriber starts it.
    pub fn new(store: DynStore, settings: EventSettings) -> Arc<EventHub> {
        Arc::new(EventHub {
            store,
            settings,
            inner: Mutex::default(),
            wake: Arc::new(Notify::new()),
        })
    }

    /// How the hub was set up.
    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    /// The store the hub reads, for subscribers catching up.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ends every stream and refuses new ones: the server is stopping, and a stream would
    /// otherwise keep its connection open for ever.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.subscribers.clear();
        inner.cursor = None;
        if let Some(stop) = inner.stop.take() {
            stop.cancel();
        }
    }

    /// Whether the server is stopping.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The hub's cursor, starting the hub (at the latest event) when it is stopped.
    pub async fn cursor(self: &Arc<Self>) -> StoreResult<i64> {
        if let Some(cursor) = self.lock().cursor {
            return Ok(cursor);
        }
        let latest = self.store.last_event_seq().await?;
        let mut inner = self.lock();
        if let Some(cursor) = inner.cursor {
            return Ok(cursor); // another subscriber started it meanwhile
        }
        if inner.closed {
            return Ok(latest);
        }
        inner.cursor = Some(latest);
        let stop = CancellationToken::new();
        inner.stop = Some(stop.clone());
        drop(inner);
        self.spawn(stop);
        Ok(latest)
    }

    /// Registers a subscriber that has seen every event up to `seen`, when that is the
    /// hub's cursor; otherwise returns the cursor to read up to first.
    pub fn join(&self, seen: i64, filter: &EventFilter) -> Result<Live, Option<i64>> {
        let mut inner = self.lock();
        match inner.cursor {
            Some(cursor) if cursor <= seen && !inner.closed => {
                let (sender, events) = mpsc::channel(self.settings.buffer.max(1));
                let dropped = Arc::new(AtomicBool::new(false));
                inner.subscribers.push(Subscriber {
                    filter: filter.clone(),
                    sender,
                    dropped: dropped.clone(),
                });
                Ok(Live { events, dropped })
            }
            other => Err(other),
        }
    }

    fn spawn(self: &Arc<Self>, stop: CancellationToken) {
        let wake = self.wake.clone();
        let sink: crate::store::SignalSink = Arc::new(move |_| wake.notify_one());
        let watch = self.store.watch(sink, stop.clone());
        let hub = self.clone();
        tokio::spawn(async move {
            hub.follow(&stop).await;
            stop.cancel();
            let _ = watch.await;
        });
    }

    /// The hub's loop: reads and fans out until no subscriber is left.
    async fn follow(&self, stop: &CancellationToken) {
        let mut gap: Option<(i64, Instant)> = None;
        let mut again = false;
        loop {
            if !again {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                }
            }
            if self.stop_if_idle() {
                return;
            }
            let Some(cursor) = self.lock().cursor else {
                return;
            };
            match self.store.events_after(cursor, EVENT_PAGE).await {
                Ok(page) => {
                    let full = page.len() as i64 == EVENT_PAGE;
                    let moved = self.offer(cursor, page, &mut gap);
                    again = full && moved;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "event stream cannot read the audit trail; retrying");
                    again = false;
                }
            }
        }
    }

    /// Stops the hub when no subscriber is left; true when it did.
    fn stop_if_idle(&self) -> bool {
        let mut inner = self.lock();
        inner.subscribers.retain(|s| !s.sender.is_closed());
        if !inner.subscribers.is_empty() {
            return false;
        }
        inner.cursor = None;
        if let Some(stop) = inner.stop.take() {
            stop.cancel();
        }
        true
    }

    /// Offers the events of `page` (read after `cursor`) in order, up to the first gap that
    /// has not waited long enough; returns whether the cursor moved.
    fn offer(&self, cursor: i64, page: Vec<TaskChange>, gap: &mut Option<(i64, Instant)>) -> bool {
        let mut inner = self.lock();
        if inner.cursor != Some(cursor) {
            return false; // stopped and started again meanwhile
        }
        let mut last = cursor;
        for change in page {
            if change.seq != last + 1 {
                let since = match gap {
                    Some((at, since)) if *at == last => *since,
                    _ => {
                        *gap = Some((last, Instant::now()));
                        break;
                    }
                };
                if since.elapsed() < self.settings.gap_wait {
                    break;
                }
                tracing::debug!(after = last, next = change.seq, "event stream skips a gap");
            }
            *gap = None;
            let change = Arc::new(change);
            inner.subscribers.retain(|s| deliver(s, &change));
            last = change.seq;
        }
        inner.cursor = Some(last);
        last != cursor
    }
}

/// Offers the change to the subscriber; false when it is gone or was dropped for being full.
fn deliver(subscriber: &Subscriber, change: &Arc<TaskChange>) -> bool {
    if !subscriber.filter.matches(change) {
        return !subscriber.sender.is_closed();
    }
    match subscriber.sender.try_send(change.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            subscriber.dropped.store(true, Ordering::SeqCst);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
