//! `GET /api/v1/events`: task state changes as Server-Sent Events, live from the process's
//! event hub, resumable from the audit trail (`Last-Event-ID` or `?after=`).
//!
//! Each event is `id: <seq>`, `event: task`, `data: <TaskChange as JSON>`; an idle stream
//! carries `: keep-alive` comments. A subscriber first reads the trail itself from where it
//! resumes up to the hub's cursor, then joins the hub there (see `event_hub`), so it gets each
//! event once and in order. A stream the hub dropped for not reading ends with a comment
//! saying so.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::State,
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt, stream};
use utoipa::{
    IntoParams, ToSchema,
    openapi::path::{Parameter, ParameterIn},
};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    event_hub::{EventFilter, EventHub, Live},
    extract::{QueryParams, WHOLE_ID},
};
use crate::{
    store::{EVENT_PAGE, TaskChange},
    validate::spec::{self, Integer, Spec, Text},
};

const TASK_ID: Spec<Text> = WHOLE_ID.with_name("task_id").optional();
const QUEUE: Spec<Text> = spec::text("queue", "Only events of tasks in this queue.").stored();
const TYPE: Spec<Text> = spec::text("type", "Only events of tasks of this type.").stored();
const WORKFLOW_ID: Spec<Text> = WHOLE_ID.with_name("workflow_id").optional();
const AFTER: Spec<Integer> = spec::integer(
    "after",
    0,
    i64::MAX,
    "Resume after this event id (as the `Last-Event-ID` header does; the header wins).",
);

/// The parameters every event-stream request may carry; any other is refused.
const KNOWN: &[&str] = &["task_id", "queue", "type", "workflow_id", "after"];

/// The query parameters of `GET /api/v1/events`.
pub struct EventParams;

impl IntoParams for EventParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        spec::query_parameters(&[&TASK_ID, &QUEUE, &TYPE, &WORKFLOW_ID, &AFTER])
    }
}

/// One event of the stream as the document describes it: its three SSE fields.
#[derive(ToSchema)]
#[allow(dead_code)] // written by hand on the wire; this type only documents its shape
pub struct StreamedEvent {
    /// The event's seq in the audit trail; send it back as `Last-Event-ID` to resume.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// Always `task`.
    event: String,
    /// One JSON object: {seq, task_id, status, from_status, kind, type, queue, attempt, at,
    /// workflow_id, error, actor}.
    data: String,
}

#[utoipa::path(
    get, path = "/events", tag = "tasks",
    params(
        EventParams,
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "Resume after this event id: the events after it are read from the audit trail, then live ones follow."),
    ),
    responses(
        (status = 200, description = "A stream of Server-Sent Events: `id` the event's seq, `event: task`, `data` one JSON object {seq, task_id, status, from_status, kind, type, queue, attempt, at, workflow_id, error, actor}; `: keep-alive` comments while idle. Without a resume point it starts with the next change.", content_type = "text/event-stream", body = StreamedEvent),
        (status = 422, description = "A parameter or the Last-Event-ID header is malformed, or a parameter is unknown", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    mut params: QueryParams,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = EventFilter {
        task_id: whole_id(&mut params, &TASK_ID),
        queue: params.stored_text(&QUEUE),
        task_type: params.stored_text(&TYPE),
        workflow_id: whole_id(&mut params, &WORKFLOW_ID),
    };
    let after = params.text(AFTER.name).map(|_| params.integer(&AFTER));
    for (name, _) in params.prefixed("") {
        if !KNOWN.contains(&name.as_str()) {
            params.reject(
                &name,
                "extra_forbidden",
                format!("Unknown parameter '{name}'"),
            );
        }
    }
    params.finish()?;
    let resume = match last_event_id(&headers)? {
        Some(id) => Some(id),
        None => after,
    };
    let hub = state.events.clone();
    if hub.is_closed() {
        return Err(ApiError::Unavailable("The server is stopping".into()));
    }
    let cursor = hub
        .cursor()
        .await
        .map_err(|err| ApiError::from_store(err, || "Not Found".into()))?;
    let follow = Follow {
        seen: resume.unwrap_or(cursor),
        hub: hub.clone(),
        filter,
        live: None,
        ended: false,
    };
    let heartbeat = KeepAlive::new()
        .interval(hub.settings().heartbeat)
        .text("keep-alive");
    Ok(Sse::new(follow.into_stream()).keep_alive(heartbeat))
}

/// A whole UUID from the query, or None (recording why it is not one).
fn whole_id(params: &mut QueryParams, spec: &Spec<Text>) -> Option<Uuid> {
    params
        .formatted(spec)
        .and_then(|text| Uuid::try_parse(&text).ok())
}

/// The `Last-Event-ID` header as an event id, when given.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(id) if id >= 0 => Ok(Some(id)),
        _ => Err(ApiError::invalid(
            &["header", "last-event-id"],
            "int_parsing",
            format!(
                "Last-Event-ID should be an event id (a whole number of 0 or more), not '{text}'"
            ),
        )),
    }
}

/// One subscriber's way through the trail: catching up from `seen`, then live.
struct Follow {
    hub: Arc<EventHub>,
    filter: EventFilter,
    /// Every event up to this one was sent (or did not match).
    seen: i64,
    live: Option<Live>,
    ended: bool,
}

impl Follow {
    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> {
        stream::unfold(self, |mut follow| async move {
            let batch = follow.next_batch().await?;
            Some((stream::iter(batch.into_iter().map(Ok)), follow))
        })
        .flatten()
    }

    /// The next events to send; None when the stream ends.
    async fn next_batch(&mut self) -> Option<Vec<Event>> {
        if self.ended {
            return None;
        }
        if let Some(live) = &mut self.live {
            while let Some(change) = live.events.recv().await {
                // A resume point past the hub's cursor: what it has seen is not sent again.
                if change.seq > self.seen {
                    self.seen = change.seq;
                    return Some(vec![event(&change)]);
                }
            }
            self.ended = true;
            let dropped = live.dropped.load(std::sync::atomic::Ordering::SeqCst);
            return dropped.then(|| {
                vec![
                    Event::default().comment(
                        "dropped: this client fell too far behind; resume with Last-Event-ID",
                    ),
                ]
            });
        }
        match self.catch_up().await {
            Ok(batch) => Some(batch),
            Err(err) => {
                tracing::warn!(error = %err, "event stream cannot read the audit trail");
                self.ended = true;
                Some(vec![Event::default().comment(
                    "error: the audit trail cannot be read now; resume with Last-Event-ID",
                )])
            }
        }
    }

    /// Joins the hub when `seen` is its cursor, else reads the trail toward it: the events
    /// read (maybe none, once joined).
    async fn catch_up(&mut self) -> crate::store::StoreResult<Vec<Event>> {
        loop {
            if self.hub.is_closed() {
                self.ended = true;
                return Ok(Vec::new());
            }
            let upto = match self.hub.join(self.seen, &self.filter) {
                Ok(live) => {
                    self.live = Some(live);
                    return Ok(Vec::new());
                }
                Err(Some(upto)) => upto,
                Err(None) => self.hub.cursor().await?,
            };
            if upto <= self.seen {
                continue;
            }
            let page = self.hub.store().events_after(self.seen, EVENT_PAGE).await?;
            let full = page.len() as i64 == EVENT_PAGE;
            let mut out = Vec::new();
            let mut last = self.seen;
            for change in page.iter().take_while(|c| c.seq <= upto) {
                last = change.seq;
                if self.filter.matches(change) {
                    out.push(event(change));
                }
            }
            // A short page, or one past the cursor, covers everything up to it.
            self.seen = if full && last < upto && page.iter().all(|c| c.seq <= upto) {
                last
            } else {
                upto
            };
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

fn event(change: &TaskChange) -> Event {
    let data = serde_json::to_string(change).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(change.seq.to_string())
        .event("task")
        .data(data)
}
