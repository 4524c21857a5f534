//! Fact endpoints: create, list with search and tag filters, get, patch, delete.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    ApiError, AppState,
    extract::{FactIdPath, JsonObject, QueryParams},
};
use crate::{
    model::{Fact, IdRef},
    store::{FactQuery, Page, StoreError},
    validate::{self, FieldError},
};

/// The body of `POST /api/v1/facts`.
// Documentation only: the body is validated field by field to report every error.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateFactRequest {
    /// Required; may be empty.
    text: String,
    /// Default `[]`.
    tags: Option<Vec<String>>,
    /// Default `{}`.
    #[schema(value_type = Option<Object>)]
    meta_data: Option<serde_json::Value>,
}

/// The body of `PATCH /api/v1/facts/{fact_id}`: only the keys present change.
// Documentation only, as above.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UpdateFactRequest {
    /// May not be null.
    text: Option<String>,
    /// null means `[]`.
    tags: Option<Vec<String>>,
    /// null means `{}`.
    #[schema(value_type = Option<Object>)]
    meta_data: Option<serde_json::Value>,
}

/// A page of facts, newest first.
#[derive(Serialize, ToSchema)]
pub struct FactList {
    /// Facts matching the filters, before paging.
    total: i64,
    items: Vec<Fact>,
}

/// The answer to a delete.
#[derive(Serialize, ToSchema)]
pub struct Deleted {
    deleted: Uuid,
}

/// Query parameters of `GET /api/v1/facts`.
// Documentation only: `list_facts` reads the query with `QueryParams`.
#[derive(Deserialize, IntoParams)]
#[allow(dead_code)]
pub struct FactListParams {
    /// Case-insensitive substring of the text or of the metadata as JSON; `%`, `_` and `\`
    /// are literal.
    q: Option<String>,
    /// Only facts carrying this tag (exact, case-sensitive); repeat it to require several.
    tag: Option<Vec<String>>,
    /// 1..=1000, default 100.
    limit: Option<i64>,
    /// At least 0, default 0.
    offset: Option<i64>,
}

#[utoipa::path(
    post, path = "/facts", tag = "facts",
    request_body = CreateFactRequest,
    responses(
        (status = 200, description = "The fact as stored", body = Fact),
        (status = 413, description = "Body over the size limit"),
        (status = 422, description = "Invalid body"),
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

#[utoipa::path(
    get, path = "/facts", tag = "facts",
    params(FactListParams),
    responses(
        (status = 200, description = "Facts, newest first", body = FactList),
        (status = 422, description = "A parameter is out of range or malformed"),
    )
)]
pub async fn list_facts(
    State(state): State<AppState>,
    mut params: QueryParams,
) -> Result<Json<FactList>, ApiError> {
    let query = FactQuery {
        q: params.text("q"),
        tags: params.all("tag"),
        limit: params.integer("limit", 1, 1000, 100),
        offset: params.integer("offset", 0, i64::MAX, 0),
    };
    params.finish()?;
    refuse_nul(&query)?;
    let Page { total, items } = state
        .store
        .list_facts(&query)
        .await
        .map_err(|err| store_error(err, ""))?;
    Ok(Json(FactList { total, items }))
}

#[utoipa::path(
    get, path = "/facts/{fact_id}", tag = "facts",
    params(("fact_id" = String, Path, description = "A fact id, or a unique prefix of one (4+ characters)")),
    responses(
        (status = 200, description = "The fact", body = Fact),
        (status = 404, description = "No such fact"),
        (status = 409, description = "The prefix matches several facts"),
        (status = 422, description = "Not a UUID or prefix"),
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
    params(("fact_id" = String, Path, description = "A fact id or unique prefix")),
    request_body = UpdateFactRequest,
    responses(
        (status = 200, description = "The updated fact", body = Fact),
        (status = 404, description = "No such fact"),
        (status = 422, description = "Invalid body"),
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
    params(("fact_id" = String, Path, description = "A fact id or unique prefix")),
    responses(
        (status = 200, description = "The id of the deleted fact", body = Deleted),
        (status = 404, description = "No such fact"),
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

/// Refuses `q` or `tag` values holding U+0000: PostgreSQL rejects it in any text it is given,
/// which would fail the whole query (a 500) instead of matching nothing.
fn refuse_nul(query: &FactQuery) -> Result<(), ApiError> {
    let bad_q = query.q.iter().any(|q| q.contains('\0'));
    let bad_tag = query.tags.iter().any(|t| t.contains('\0'));
    let errors: Vec<FieldError> = [("q", bad_q), ("tag", bad_tag)]
        .into_iter()
        .filter(|(_, bad)| *bad)
        .map(|(name, _)| {
            FieldError::new(
                vec![json!("query"), json!(name)],
                validate::NUL_KIND,
                validate::NUL_MSG,
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn body_errors(errors: Vec<FieldError>) -> ApiError {
    ApiError::Validation(errors.into_iter().map(|e| e.under("body")).collect())
}

fn store_error(err: StoreError, id_as_sent: &str) -> ApiError {
    ApiError::from_store(err, || format!("Fact '{id_as_sent}' not found"))
}
