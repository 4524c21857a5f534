//! An existing axum application that embeds seedcore: its own route, a Rust handler for its own
//! task type, the seedcore API under `/api/v1`, and the workers started and stopped with the
//! application.
//!
//! Run it with `cargo run --example host_app` (data in `./data/host_app.db`), or point it at
//! PostgreSQL with `DATABASE_URL=postgresql://…`. `PORT` picks the port (0: any free one).

use std::net::SocketAddr;

use axum::{Router, routing::get};
use seedcore::{
    api::{self, ApiSettings, AppState},
    engine::{Engine, EngineSettings, HandlerError, HandlerRouter, TaskContext, handler_fn},
    store,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The host's own task type: greets whoever `params.name` names.
async fn greet(task: TaskContext) -> Result<Value, HandlerError> {
    let name = task.params["name"]
        .as_str()
        .ok_or_else(|| HandlerError::Permanent("params.name must be a string".into()))?;
    Ok(json!({ "greeting": format!("Hello, {name}!") }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://data/host_app.db".into());
    let store = store::open(&url, 10).await?;
    store.migrate().await?;

    let mut handlers = HandlerRouter::with_builtins();
    handlers.register("greet", handler_fn(greet));
    let workers = Engine::new(store.clone(), handlers, EngineSettings::default())
        .start()
        .await;

    let app = Router::new()
        .route(
            "/hello",
            get(|| async { "hello from the host application" }),
        )
        .nest(
            "/api/v1",
            api::v1_router(AppState::new(store, ApiSettings::default())),
        );

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on http://{}", listener.local_addr()?);

    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await?;
    // Running tasks get their grace period; the rest go back to the queue.
    workers.shutdown().await;
    Ok(())
}

async fn stop_on_signal(stop: CancellationToken) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    stop.cancel();
}
