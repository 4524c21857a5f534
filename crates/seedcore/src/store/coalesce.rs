//! Coalescing of concurrent calls into batches: every call made while a batch is being
//! processed joins the next one, so many concurrent requests share one statement, one round
//! trip and one commit. A lone call is a batch of one and waits for nothing.
//!
//! Invariants: the batch function answers each input of a batch, in order. A call the loop
//! cannot take (the loop gone: it runs on the runtime of the first call, which a host may have
//! shut down since) runs as a batch of one in the caller's task; a call taken whose batch
//! never answers gets [`StoreError::Unavailable`], never a hang. At most
//! `in_flight` batches run at once; the loop ends when the last [`Coalescer`] is dropped.

use std::{future::Future, sync::Arc};

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{StoreError, StoreResult};

/// One call waiting for its batch.
struct Call<In, Out> {
    input: In,
    reply: oneshot::Sender<Out>,
}

/// The batch function, shared by the loop and by calls the loop cannot take.
type Run<In, Out> = Arc<dyn Fn(Vec<In>) -> BoxFuture<'static, Vec<Out>> + Send + Sync>;

/// The sending side of one batch loop.
pub(crate) struct Coalescer<In, Out> {
    calls: mpsc::Sender<Call<In, Out>>,
    run: Run<In, Out>,
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
        let run: Run<In, Out> = Arc::new(move |inputs| Box::pin(run(inputs)));
        let (calls, inbox) = mpsc::channel(4 * max_batch);
        tokio::spawn(serve(inbox, max_batch, in_flight, run.clone()));
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
            return (self.run)(vec![refused.0.input])
                .await
                .pop()
                .ok_or_else(dropped);
        }
        answer.await.map_err(|_| dropped())
    }
}

async fn serve<In, Out>(
    mut inbox: mpsc::Receiver<Call<In, Out>>,
    max_batch: usize,
    in_flight: usize,
    run: Run<In, Out>,
) where
    In: Send + 'static,
    Out: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        // The slot first: calls arriving while every batch is busy gather into the next one.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = inbox.recv().await else {
            return;
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
        let outputs = run(inputs);
        tokio::spawn(async move {
            for (reply, output) in replies.into_iter().zip(outputs.await) {
                // The caller may have given up (its request was dropped); nothing to tell.
                let _ = reply.send(output);
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

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
