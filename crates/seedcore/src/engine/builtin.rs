//! The built-in task types of the contract: echo, noop, sleep, fail, fact_store, fact_search.
//! Each is usable with no setup; bad params fail the task at once (not retried).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::handler::{HandlerError, HandlerResult, HandlerRouter, TaskContext, handler_fn};
use crate::{
    store::FactQuery,
    validate::{self, Fields},
};

/// Adds the built-in handlers to `router`, replacing any registered for their types.
pub fn register(router: &mut HandlerRouter) {
    router
        .register("echo", handler_fn(echo))
        .register("noop", handler_fn(noop))
        .register("sleep", handler_fn(sleep))
        .register("fail", handler_fn(fail))
        .register("fact_store", handler_fn(fact_store))
        .register("fact_search", handler_fn(fact_search));
}

async fn echo(task: TaskContext) -> HandlerResult {
    Ok(task.params)
}

async fn noop(_task: TaskContext) -> HandlerResult {
    Ok(json!({}))
}

async fn sleep(task: TaskContext) -> HandlerResult {
    let params = object(&task.params);
    let mut fields = Fields::new(&params);
    let seconds = fields.number_at_least("seconds", 0.0);
    invalid(fields.finish())?;
    let seconds = seconds.unwrap_or(0.0);
    let pause = Duration::try_from_secs_f64(seconds)
        .map_err(|_| HandlerError::Permanent(format!("seconds: {seconds} is too long")))?;
    tokio::select! {
        _ = tokio::time::sleep(pause) => Ok(json!({"slept": task.params["seconds"]})),
        _ = task.cancel.cancelled() => Err(HandlerError::Retryable("sleep interrupted".into())),
    }
}

async fn fail(task: TaskContext) -> HandlerResult {
    let params = object(&task.params);
    let mut fields = Fields::new(&params);
    let message = fields.string("message");
    let retryable = fields.boolean("retryable").unwrap_or(false);
    invalid(fields.finish())?;
    let message = message.unwrap_or_else(|| "task failed as asked".into());
    Err(if retryable {
        HandlerError::Retryable(message)
    } else {
        HandlerError::Permanent(message)
    })
}

async fn fact_store(task: TaskContext) -> HandlerResult {
    let fact = validate::new_fact(&object(&task.params)).map_err(|errors| {
        HandlerError::Permanent(format!("invalid params: {}", validate::describe(&errors)))
    })?;
    let fact = task.store.create_fact(fact).await.map_err(store_error)?;
    Ok(json!({"fact_id": fact.id}))
}

async fn fact_search(task: TaskContext) -> HandlerResult {
    let params = object(&task.params);
    let mut fields = Fields::new(&params);
    let q = fields.string("q").filter(|q| !q.is_empty());
    let tag = fields.string("tag").filter(|t| !t.is_empty());
    let limit = fields.integer_in("limit", 1, 1000).unwrap_or(100);
    invalid(fields.finish())?;
    let query = FactQuery {
        q,
        tags: tag.into_iter().collect(),
        limit,
        ..FactQuery::default()
    };
    let page = task.store.list_facts(&query).await.map_err(store_error)?;
    let ids: Vec<Value> = page.items.iter().map(|f| json!(f.id)).collect();
    Ok(json!({"total": page.total, "ids": ids}))
}

/// Params as an object; anything else reads as no params.
fn object(params: &Value) -> Map<String, Value> {
    params.as_object().cloned().unwrap_or_default()
}

fn invalid(result: Result<(), Vec<validate::FieldError>>) -> Result<(), HandlerError> {
    result.map_err(|errors| {
        HandlerError::Permanent(format!("invalid params: {}", validate::describe(&errors)))
    })
}

/// A store failure inside a handler is worth retrying: the database may be back soon.
fn store_error(err: crate::store::StoreError) -> HandlerError {
    HandlerError::Retryable(format!("store error: {err}"))
}
