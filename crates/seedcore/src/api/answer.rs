//! A JSON answer serialized into a buffer sized for one task, for the routes answered most
//! often (`POST /api/v1/tasks`, `GET /api/v1/tasks/{id}`).
//!
//! `axum::Json` starts at 128 bytes, so a task (about 700 bytes as JSON) grows its buffer
//! three times, copying what was written each time. The bytes sent are the same as
//! `axum::Json`'s, with the same `content-type`.
//!
//! Invariants: a value that cannot be serialized is answered 500 in the contract's
//! `{"detail": …}` shape, never a panic.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// Room for a task with small params; larger ones grow the buffer as usual.
const TASK_SIZED: usize = 1024;

/// A value answered as JSON, written into a buffer of [`TASK_SIZED`] bytes.
pub struct TaskSized<T>(pub T);

impl<T: Serialize> IntoResponse for TaskSized<T> {
    fn into_response(self) -> Response {
        let mut buffer = Vec::with_capacity(TASK_SIZED);
        match serde_json::to_writer(&mut buffer, &self.0) {
            Ok(()) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                buffer,
            )
                .into_response(),
            Err(err) => {
                tracing::error!(error = %err, "an answer could not be serialized");
                super::internal_error()
            }
        }
    }
}
