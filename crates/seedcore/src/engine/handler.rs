//! Handlers and the router that picks one for a task.
//!
//! A handler is an async function from a [`TaskContext`] to the task's output; it may report
//! its attempt's progress through [`Progress`], a write fenced by the attempt's lease. The
//! router resolves `(type, domain)` first, then `type` alone; a type no handler serves fails
//! at once.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    model::{Task, TaskStatus},
    store::{DynStore, Lease, StoreError},
    telemetry::traceparent::TraceParent,
};

/// What a handler sees of the task it runs.
#[derive(Clone)]
pub struct TaskContext {
    /// The task being run.
    pub id: Uuid,
    /// The type the handler was picked for.
    pub task_type: String,
    /// The task's input as stored (a JSON object).
    pub params: Value,
    /// The task's domain, if it has one.
    pub domain: Option<String>,
    /// The task's drift score.
    pub drift_score: f64,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// Attempts allowed: once `attempt` reaches it, a retryable error is final.
    pub max_attempts: i32,
    /// Whether the task runs on the escalated path.
    pub escalated: bool,
    /// Cancelled when the task is cancelled, its lease is lost, or the process shuts down;
    /// a handler that waits should stop waiting when it fires.
    pub cancel: CancellationToken,
    /// The store, so handlers can read and write facts.
    pub store: DynStore,
    /// The tasks this one depended on, each with how it ended (empty without dependencies).
    pub parents: Vec<Parent>,
    /// The W3C trace the task was created in, if its creator sent a `traceparent`; a handler
    /// calling other services passes on [`TraceParent::child`].
    pub traceparent: Option<TraceParent>,
    /// Reports how far along this attempt is, as the task's `progress`.
    pub progress: Progress,
}

/// What a handler reports its attempt's progress with: the same write as a pull worker's
/// heartbeat that carries `progress`, fenced by the attempt's lease.
#[derive(Clone)]
pub struct Progress {
    store: DynStore,
    lease: Lease,
    lease_duration: Duration,
}

/// Why a progress report was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// Not a number from 0 to 1: a mistake in the handler, never stored.
    #[error("progress must be a number from 0 to 1, got {0}")]
    OutOfRange(f64),
    /// The store did not take the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Progress {
    /// Reports for the attempt that holds `lease`, each report renewing it for
    /// `lease_duration`. The engine makes one for every attempt it runs; a test of a handler
    /// can make its own from a claimed lease.
    pub fn new(store: DynStore, lease: Lease, lease_duration: Duration) -> Progress {
        Progress {
            store,
            lease,
            lease_duration,
        }
    }

    /// Records `fraction` (0 to 1) as the task's `progress`, shown in the API and on the
    /// dashboard until the task's next attempt starts, and renews the attempt's lease in the
    /// same write. `Ok(false)` when the attempt no longer holds its task (cancelled, rescued or
    /// released): nothing was written, and nothing the handler returns will be recorded.
    pub async fn report(&self, fraction: f64) -> Result<bool, ProgressError> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(ProgressError::OutOfRange(fraction));
        }
        let held = self
            .store
            .renew_reporting(self.lease, self.lease_duration, fraction)
            .await?;
        Ok(held)
    }
}

/// A task the running task depended on, as its handler sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Parent {
    /// The parent's id.
    pub id: Uuid,
    /// The parent's key, when both belong to a workflow.
    pub key: Option<String>,
    /// How the parent ended: `completed`, or with `run_on_failure` also `failed` or `cancelled`.
    pub status: TaskStatus,
    /// The parent's result envelope, once completed (its `result` field is the handler output).
    pub result: Option<Value>,
    /// Why the parent failed or was cancelled.
    pub error: Option<String>,
}

impl Parent {
    /// The view of a stored parent task.
    pub fn of(task: Task) -> Parent {
        Parent {
            id: task.id,
            key: task.workflow_key,
            status: task.status,
            result: task.result,
            error: task.error,
        }
    }
}

/// Why a handler failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Trying again cannot help (bad params, a refused request): the task fails now.
    #[error("{0}")]
    Permanent(String),
    /// Trying again may help (a timeout, a dependency down): retried while attempts remain.
    #[error("{0}")]
    Retryable(String),
}

/// What a handler returns: the task's output, or why it failed.
pub type HandlerResult = Result<Value, HandlerError>;

/// Runs the tasks of the types it is registered for; [`handler_fn`] makes one from an async fn.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt; the output becomes the `result` of the task's result envelope.
    async fn run(&self, task: TaskContext) -> HandlerResult;
}

/// A handler made from an async function or closure.
pub struct FnHandler<F>(F);

/// Wraps `f` (an async fn taking a [`TaskContext`]) as a [`Handler`].
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    FnHandler(f)
}

#[async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    async fn run(&self, task: TaskContext) -> HandlerResult {
        (self.0)(task).await
    }
}

/// A registered handler and the name it reports in the result envelope.
#[derive(Clone)]
pub struct Route {
    /// Reported as `handler` in the result envelope.
    pub name: String,
    /// What runs the tasks.
    pub handler: Arc<dyn Handler>,
}

/// Maps task types (optionally per domain) to handlers.
#[derive(Clone, Default)]
pub struct HandlerRouter {
    by_type: HashMap<String, Route>,
    by_type_and_domain: HashMap<(String, String), Route>,
}

impl HandlerRouter {
    /// A router with the built-in handlers of the contract.
    pub fn with_builtins() -> HandlerRouter {
        let mut router = HandlerRouter::default();
        super::builtin::register(&mut router);
        router
    }

    /// Sends each `(type, url)` pair's tasks to a remote executor (replacing a built-in).
    pub fn with_executors(mut self, executors: &[(String, String)]) -> HandlerRouter {
        let client = reqwest::Client::new();
        for (task_type, url) in executors {
            let executor = super::remote::RemoteExecutor::new(url, client.clone());
            self.register_named(task_type, &format!("remote:{task_type}"), executor);
        }
        self
    }

    /// Serves `task_type` with `handler`, named after the type; replaces an earlier one.
    pub fn register(&mut self, task_type: &str, handler: impl Handler) -> &mut Self {
        self.register_named(task_type, task_type, handler)
    }

    /// Serves `task_type` with `handler` reporting `name` in results.
    pub fn register_named(
        &mut self,
        task_type: &str,
        name: &str,
        handler: impl Handler,
    ) -> &mut Self {
        let route = Route {
            name: name.into(),
            handler: Arc::new(handler),
        };
        self.by_type.insert(task_type.into(), route);
        self
    }

    /// Serves `task_type` in `domain` only; wins over the type's general handler.
    pub fn register_for_domain(
        &mut self,
        task_type: &str,
        domain: &str,
        name: &str,
        handler: impl Handler,
    ) -> &mut Self {
        let route = Route {
            name: name.into(),
            handler: Arc::new(handler),
        };
        self.by_type_and_domain
            .insert((task_type.into(), domain.into()), route);
        self
    }

    /// The route for `task_type` in `domain`: the domain's own if any, else the type's.
    pub fn resolve(&self, task_type: &str, domain: Option<&str>) -> Option<&Route> {
        domain
            .and_then(|d| self.by_type_and_domain.get(&(task_type.into(), d.into())))
            .or_else(|| self.by_type.get(task_type))
    }

    /// A future that runs the task's handler, or fails it when no handler serves its type.
    pub fn dispatch(
        &self,
        task: TaskContext,
    ) -> (
        Option<String>,
        Pin<Box<dyn Future<Output = HandlerResult> + Send>>,
    ) {
        match self.resolve(&task.task_type, task.domain.as_deref()) {
            Some(route) => {
                let handler = route.handler.clone();
                (
                    Some(route.name.clone()),
                    Box::pin(async move { handler.run(task).await }),
                )
            }
            None => {
                let message = format!("Unsupported task type '{}'", task.task_type);
                (
                    None,
                    Box::pin(async move { Err(HandlerError::Permanent(message)) }),
                )
            }
        }
    }
}
