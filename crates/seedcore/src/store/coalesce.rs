//! Coalescing of concurrent calls into batches: every call made while a batch is being
//! processed joins the next one, so many concurrent requests share one statement, one round
//! trip and one commit. A lone call is a batch of one and waits for nothing.
//!
//! Each of the `in_flight` batch slots may hold something between its batches (a database
//! connection: giving one back to the pool costs a round trip of its own), as long as calls
//! keep coming; it gives it up as soon as the loop is quiet.
//!
//! Invariants: the batch function answers each input of a batch, in order. A call the loop
//! cannot take (the loop gone: it runs on the runtime of the first call, which a host may have
//! shut down since) runs as a batch of one in the caller's task; a call taken whose batch
//! never answers gets [`StoreError::Unavailable`], never a hang. At most `in_flight` batches
//! run at once, and a slot whose batch panicked is replaced; once no call is waiting, every
//! slot that is not running a batch holds nothing. The loop ends when the last [`Coalescer`]
//! is dropped.

use std::{future::Future, sync::Arc};

use futures::future::BoxFuture;
use tokio::sync::{
    mpsc::{self, error::TryRecvError},
    oneshot,
};

use super::{StoreError, StoreResult};

/// What a batch slot keeps from one batch to the next while calls keep coming.
pub(crate) trait Held: Default + Send + 'static {
    /// Gives up what it holds: the loop has no call waiting.
    fn release(&mut self);
}

/// A slot that keeps nothing.
impl Held for () {
    fn release(&mut self) {}
}

/// One call waiting for its batch.
struct Call<In, Out> {
    input: In,
    reply: oneshot::Sender<Out>,
}

/// The batch function, shared by the loop and by calls the loop cannot take: it gets the
/// slot's holding and hands it back with the outputs.
type Run<In, Out, H> = Arc<dyn Fn(H, Vec<In>) -> BoxFuture<'static, (H, Vec<Out>)> + Send + Sync>;

/// The sending side of one batch loop.
pub(crate) struct Coalescer<In, Out, H: Held = ()> {
    calls: mpsc::Sender<Call<In, Out>>,
    run: Run<In, Out, H>,
}

impl<In, Out> Coalescer<In, Out>
where
    In: Send + 'static,
    Out: Send + 'static,
{
    /// Starts the loop (on the current tokio runtime). `run` gets up to `max_batch` inputs and
    /// returns one output per input, in the same order.
    pub(crate) fn spawn<F, Fut>(max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(Vec<In>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Out>> + Send + 'static,
    {
        Coalescer::spawn_holding(max_batch, in_flight, move |(), inputs| {
            let outputs = run(inputs);
            async move { ((), outputs.await) }
        })
    }
}

impl<In, Out, H> Coalescer<In, Out, H>
where
    In: Send + 'static,
    Out: Send + 'static,
    H: Held,
{
    /// As [`Coalescer::spawn`], with each slot's holding passed to `run` and handed back.
    pub(crate) fn spawn_holding<F, Fut>(max_batch: usize, in_flight: usize, run: F) -> Self
    where
        F: Fn(H, Vec<In>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = (H, Vec<Out>)> + Send + 'static,
    {
        let run: Run<In, Out, H> = Arc::new(move |held, inputs| Box::pin(run(held, inputs)));
        let (calls, inbox) = mpsc::channel(4 * max_batch);
        let quiet = calls.downgrade();
        tokio::spawn(serve(inbox, quiet, max_batch, in_flight, run.clone()));
        Coalescer { calls, run }
    }

    /// Hands `input` to the next batch and waits for its output.
    pub(crate) async fn call(&self, input: In) -> StoreResult<Out> {
        let dropped = || {
            StoreError::Unavailable(sqlx::Error::Protocol(
                "the batch was dropped before it answered".into(),
            ))
        };
        let (reply, answer) = oneshot::channel();
        if let Err(refused) = self.calls.send(Call { input, reply }).await {
            let (_, mut outputs) = (self.run)(H::default(), vec![refused.0.input]).await;
            return outputs.pop().ok_or_else(dropped);
        }
        answer.await.map_err(|_| dropped())
    }
}

/// A slot lent to one batch: it goes back to the loop when the batch ends, holding what the
/// batch handed back, or nothing when the batch panicked.
struct Lent<H: Held> {
    free: mpsc::Sender<H>,
    held: Option<H>,
}

impl<H: Held> Lent<H> {
    /// Returns the slot holding `held`.
    fn give_back(mut self, held: H) {
        self.held = Some(held);
    }
}

impl<H: Held> Drop for Lent<H> {
    fn drop(&mut self) {
        // The channel has room for every slot, so this only fails once the loop has ended.
        let _ = self.free.try_send(self.held.take().unwrap_or_default());
    }
}

/// Whether no call is waiting in the inbox `calls` sends to.
fn nothing_waiting<In, Out>(calls: &mpsc::WeakSender<Call<In, Out>>) -> bool {
    calls
        .upgrade()
        .is_none_or(|calls| calls.capacity() == calls.max_capacity())
}

async fn serve<In, Out, H>(
    mut inbox: mpsc::Receiver<Call<In, Out>>,
    calls: mpsc::WeakSender<Call<In, Out>>,
    max_batch: usize,
    in_flight: usize,
    run: Run<In, Out, H>,
) where
    In: Send + 'static,
    Out: Send + 'static,
    H: Held,
{
    let (free, mut slots) = mpsc::channel(in_flight);
    for _ in 0..in_flight {
        let _ = free.try_send(H::default());
    }
    loop {
        // The slot first: calls arriving while every batch is busy gather into the next one.
        let Some(mut held) = slots.recv().await else {
            return;
        };
        let first = match inbox.try_recv() {
            Ok(call) => call,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                held.release();
                let Some(call) = inbox.recv().await else {
                    return;
                };
                call
            }
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match inbox.try_recv() {
                Ok(call) => batch.push(call),
                Err(_) => break,
            }
        }
        let (inputs, replies): (Vec<In>, Vec<oneshot::Sender<Out>>) =
            batch.into_iter().map(|c| (c.input, c.reply)).unzip();
        let outputs = run(held, inputs);
        let lent = Lent {
            free: free.clone(),
            held: None,
        };
        let calls = calls.clone();
        tokio::spawn(async move {
            let (mut held, outputs) = outputs.await;
            for (reply, output) in replies.into_iter().zip(outputs) {
                // The caller may have given up (its request was dropped); nothing to tell.
                let _ = reply.send(output);
            }
            if nothing_waiting(&calls) {
                held.release();
            }
            lent.give_back(held);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_batches_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let doubler = Arc::new(Coalescer::spawn(8, 1, move |inputs: Vec<u32>| {
            seen.lock().unwrap().push(inputs.len());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                inputs.into_iter().map(|n| n * 2).collect::<Vec<_>>()
            }
        }));
        let calls: Vec<_> = (0..40u32)
            .map(|n| {
                let doubler = doubler.clone();
                tokio::spawn(async move { (n, doubler.call(n).await.unwrap()) })
            })
            .collect();
        for call in calls {
            let (n, doubled) = call.await.unwrap();
            assert_eq!(doubled, n * 2);
        }
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 40);
        assert!(sizes.iter().all(|&size| size <= 8));
        assert!(
            sizes.len() < 40,
            "calls made together were batched: {sizes:?}"
        );
    }

    #[tokio::test]
    async fn a_lone_call_is_a_batch_of_one() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let echo = Coalescer::spawn(8, 2, move |inputs: Vec<&'static str>| {
            seen.lock().unwrap().push(inputs.len());
            async move { inputs }
        });
        assert_eq!(echo.call("one").await.unwrap(), "one");
        assert_eq!(echo.call("two").await.unwrap(), "two");
        assert_eq!(*sizes.lock().unwrap(), [1, 1]);
    }

    /// What the slots of the test below hold now, and how often they took something.
    static HOLDING: AtomicUsize = AtomicUsize::new(0);
    static TAKEN: AtomicUsize = AtomicUsize::new(0);

    /// A stand-in for a pool connection: taken on a slot's first batch, counted while held.
    #[derive(Default)]
    struct Token(bool);

    impl Held for Token {
        fn release(&mut self) {
            if std::mem::take(&mut self.0) {
                HOLDING.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    #[tokio::test]
    async fn slots_keep_their_holding_while_calls_keep_coming_and_give_it_up_when_quiet() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let echo = Arc::new(Coalescer::spawn_holding(
            8,
            2,
            move |mut token: Token, inputs: Vec<u32>| {
                counted.fetch_add(1, Ordering::SeqCst);
                if !token.0 {
                    token.0 = true;
                    HOLDING.fetch_add(1, Ordering::SeqCst);
                    TAKEN.fetch_add(1, Ordering::SeqCst);
                }
                async move {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    (token, inputs)
                }
            },
        ));
        let calls: Vec<_> = (0..200u32)
            .map(|n| {
                let echo = echo.clone();
                tokio::spawn(async move { (n, echo.call(n).await.unwrap()) })
            })
            .collect();
        for call in calls {
            let (n, answer) = call.await.unwrap();
            assert_eq!(answer, n);
        }
        let batches = batches.load(Ordering::SeqCst);
        let taken = TAKEN.load(Ordering::SeqCst);
        assert!(
            batches >= 25,
            "200 calls in batches of at most 8: {batches}"
        );
        assert!(
            taken * 4 < batches,
            "slots kept what they took between batches: taken {taken} times in {batches} batches"
        );
        let quiet_by = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while HOLDING.load(Ordering::SeqCst) > 0 {
            assert!(
                tokio::time::Instant::now() < quiet_by,
                "a quiet loop's slots still hold {}",
                HOLDING.load(Ordering::SeqCst)
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn a_call_after_the_loops_runtime_shut_down_runs_as_a_batch_of_one_in_place() {
        let first = tokio::runtime::Runtime::new().unwrap();
        let echo =
            first.block_on(async { Coalescer::spawn(8, 1, |inputs: Vec<u8>| async { inputs }) });
        drop(first);
        let second = tokio::runtime::Runtime::new().unwrap();
        let answer = second.block_on(echo.call(7));
        assert_eq!(answer.unwrap(), 7);
    }
}
