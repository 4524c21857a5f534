//! Fact endpoints: create (one or in bulk), get, patch, delete. The list and search live in
//! `fact_search`.

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{RefOr, Schema},
};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::{BulkJsonObject, FactIdPath, JsonObject, MAX_BULK, bulk_items},
};
use crate::{
    model::{Fact, IdRef},
    store::StoreError,
    validate::{self, FieldError, spec},
};

/// The body of `POST /api/v1/facts`.
pub struct CreateFactBody;

impl PartialSchema for CreateFactBody {
    fn schema() -> RefOr<Schema> {
        new_fact_schema().into()
    }
}

impl ToSchema for CreateFactBody {}

fn new_fact_schema() -> Schema {
    spec::body_schema(
        validate::NEW_FACT,
        false,
        "A fact to store. Unknown keys are ignored.",
    )
}

/// The body of `PATCH /api/v1/facts/{fact_id}`: only the keys present change.
pub struct UpdateFactBody;

impl PartialSchema for UpdateFactBody {
    fn schema() -> RefOr<Schema> {
        spec::body_schema(
            validate::FACT_PATCH,
            false,
            "The changes: only the keys present change; an empty object changes nothing.",
        )
        .into()
    }
}

impl ToSchema for UpdateFactBody {}

/// The answer to a delete.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    deleted: Uuid,
}

#[utoipa::path(
    post, path = "/facts", tag = "facts",
    request_body = CreateFactBody,
    responses(
        (status = 200, description = "The fact as stored", body = Fact),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn create_fact(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Json<Fact>, ApiError> {
    let fact = validate::new_fact(&body).map_err(body_errors)?;
    let fact = state
        .store
        .create_fact(fact)
        .await
        .map_err(|err| store_error(err, ""))?;
    Ok(Json(fact))
}

/// The body of `POST /api/v1/facts/bulk`.
pub struct CreateFactsBody;

impl PartialSchema for CreateFactsBody {
    fn schema() -> RefOr<Schema> {
        spec::bulk_schema(
            "facts",
            new_fact_schema(),
            MAX_BULK,
            "1 to 10,000 facts, each as for `POST /api/v1/facts`, stored all or none.",
        )
        .into()
    }
}

impl ToSchema for CreateFactsBody {}

/// What a bulk create stored.
#[derive(Serialize, ToSchema)]
pub struct CreatedFacts {
    created: usize,
    /// The new ids, in the order of the request.
    ids: Vec<Uuid>,
}

#[utoipa::path(
    post, path = "/facts/bulk", tag = "facts",
    request_body = CreateFactsBody,
    responses(
        (status = 200, description = "Every fact was stored", body = CreatedFacts),
        (status = 413, description = "Body over the bulk size limit", body = ErrorBody),
        (status = 422, description = "Some item is invalid: nothing was stored; every problem is listed with its item's position", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn create_facts(
    State(state): State<AppState>,
    BulkJsonObject(body): BulkJsonObject,
) -> Result<Json<CreatedFacts>, ApiError> {
    let facts = bulk_items(&body, "facts", validate::new_fact)?;
    let created = state
        .store
        .create_facts(facts)
        .await
        .map_err(|err| store_error(err, ""))?;
    let ids: Vec<Uuid> = created.iter().map(|fact| fact.id).collect();
    Ok(Json(CreatedFacts {
        created: ids.len(),
        ids,
    }))
}

/// Validates every item, so that the answer lists all problems and nothing is half-stored.
#[utoipa::path(
    get, path = "/facts/{fact_id}", tag = "facts",
    params(FactIdPath),
    responses(
        (status = 200, description = "The fact", body = Fact),
        (status = 404, description = "No such fact", body = ErrorBody),
        (status = 409, description = "The prefix matches several facts", body = ErrorBody),
        (status = 422, description = "Not a UUID or prefix", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn get_fact(
    State(state): State<AppState>,
    FactIdPath(fact_id): FactIdPath,
) -> Result<Json<Fact>, ApiError> {
    let id = resolve(&state, &fact_id).await?;
    let fact = state
        .store
        .get_fact(id)
        .await
        .map_err(|err| store_error(err, &fact_id))?;
    Ok(Json(fact))
}

#[utoipa::path(
    patch, path = "/facts/{fact_id}", tag = "facts",
    params(FactIdPath),
    request_body = UpdateFactBody,
    responses(
        (status = 200, description = "The updated fact", body = Fact),
        (status = 404, description = "No such fact", body = ErrorBody),
        (status = 409, description = "The id prefix matches several rows", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn update_fact(
    State(state): State<AppState>,
    FactIdPath(fact_id): FactIdPath,
    JsonObject(body): JsonObject,
) -> Result<Json<Fact>, ApiError> {
    let id = resolve(&state, &fact_id).await?;
    let patch = validate::fact_patch(&body).map_err(body_errors)?;
    let fact = state
        .store
        .update_fact(id, patch)
        .await
        .map_err(|err| store_error(err, &fact_id))?;
    Ok(Json(fact))
}

#[utoipa::path(
    delete, path = "/facts/{fact_id}", tag = "facts",
    params(FactIdPath),
    responses(
        (status = 200, description = "The id of the deleted fact", body = Deleted),
        (status = 404, description = "No such fact", body = ErrorBody),
        (status = 409, description = "The id prefix matches several rows", body = ErrorBody),
        (status = 422, description = "Invalid input: every problem is listed", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn delete_fact(
    State(state): State<AppState>,
    FactIdPath(fact_id): FactIdPath,
) -> Result<Json<Deleted>, ApiError> {
    let id = resolve(&state, &fact_id).await?;
    state
        .store
        .delete_fact(id)
        .await
        .map_err(|err| store_error(err, &fact_id))?;
    Ok(Json(Deleted { deleted: id }))
}

async fn resolve(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    let id = IdRef::parse(raw)
        .map_err(|err| ApiError::invalid(&["path", "fact_id"], "uuid_parsing", err.to_string()))?;
    state
        .store
        .resolve_fact(&id)
        .await
        .map_err(|err| store_error(err, raw))
}

fn body_errors(errors: Vec<FieldError>) -> ApiError {
    ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
}

fn store_error(err: StoreError, id_as_sent: &str) -> ApiError {
    ApiError::from_store(err, || format!("Fact '{id_as_sent}' not found"))
}
