//! Service endpoints: welcome, liveness (`/health`) and readiness (`/readyz`).

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::VERSION;

/// How long readiness waits for the database before calling it down.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Serialize, ToSchema)]
pub struct Welcome {
    message: &'static str,
    version: &'static str,
    docs: &'static str,
    health: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Each dependency: `ok` or `error: <why>`.
    deps: Deps,
}

#[derive(Serialize, ToSchema)]
pub struct Deps {
    db: String,
}

#[utoipa::path(get, path = "/", tag = "service",
    responses((status = 200, description = "Where to go next", body = Welcome)))]
pub async fn root() -> Json<Welcome> {
    Json(Welcome {
        message: "Welcome to SeedCore API",
        version: VERSION,
        docs: "/docs",
        health: "/health",
    })
}

#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: "seedcore-api",
        version: VERSION,
    })
}

#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "The database answers", body = Readiness),
        (status = 503, description = "The database does not answer", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db = match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
    };
    match db {
        Ok(()) => (
            StatusCode::OK,
            Json(Readiness {
                status: "ready",
                deps: Deps { db: "ok".into() },
            }),
        ),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not_ready",
                deps: Deps {
                    db: format!("error: {why}"),
                },
            }),
        ),
    }
}
