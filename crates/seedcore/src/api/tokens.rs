//! Token endpoints: list, create and revoke API tokens over HTTP, for holders of
//! `tokens:admin` only (the route table marks them strict: a token is needed even while
//! none exists, so the first one always comes from `seedcore token create` or
//! `SEEDCORE_BOOTSTRAP_TOKEN`). A token's secret is in the create answer only.

use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{
    ApiError, AppState,
    error::{ErrorBody, ValidationErrors},
    extract::JsonObject,
};
use crate::{
    auth::{ApiToken, NewToken, Role, Scope, Secret, expiry, parse_lifetime, valid_name},
    validate::FieldError,
};

/// A token as listed: never its secret.
#[derive(Serialize, ToSchema)]
pub struct TokenInfo {
    /// The public id: the 12 hex digits after `sc_`.
    id: String,
    /// Its unique name.
    name: String,
    /// The role it was made with.
    role: String,
    /// The scopes it holds.
    scopes: Vec<String>,
    created_at: DateTime<Utc>,
    /// Written at most once a minute.
    last_used_at: Option<DateTime<Utc>>,
    /// Null: it never expires.
    expires_at: Option<DateTime<Utc>>,
    /// Set once it is revoked.
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenInfo {
    fn from(token: ApiToken) -> Self {
        TokenInfo {
            id: token.id,
            name: token.name,
            role: token.role,
            scopes: token.scopes,
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// Every token, revoked ones included, oldest first.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    items: Vec<TokenInfo>,
}

/// A new token as listed, with `token`: the only time its secret is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token to send as `Authorization: Bearer <token>`; it is not stored.
    token: String,
    #[serde(flatten)]
    info: TokenInfo,
}

/// A token's role.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the body; the handler reads the names
enum RoleName {
    Viewer,
    Operator,
    Admin,
    Worker,
}

/// A scope's name.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body; the handler reads the names
enum ScopeName {
    #[schema(rename = "tasks:read")]
    TasksRead,
    #[schema(rename = "tasks:write")]
    TasksWrite,
    #[schema(rename = "tasks:admin")]
    TasksAdmin,
    #[schema(rename = "facts:read")]
    FactsRead,
    #[schema(rename = "facts:write")]
    FactsWrite,
    #[schema(rename = "queues:admin")]
    QueuesAdmin,
    #[schema(rename = "schedules:admin")]
    SchedulesAdmin,
    #[schema(rename = "workflows:write")]
    WorkflowsWrite,
    #[schema(rename = "workers:pull")]
    WorkersPull,
    #[schema(rename = "metrics:read")]
    MetricsRead,
    #[schema(rename = "tokens:admin")]
    TokensAdmin,
}

/// The body of a token create.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body; the handler reads it field by field
struct CreateTokenBody {
    /// A unique name: 1 to 100 characters, none a control character.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    name: String,
    role: RoleName,
    /// Scopes instead of the role's.
    #[schema(min_items = 1, max_items = 11, example = json!(["tasks:read", "facts:read"]))]
    scopes: Option<Vec<ScopeName>>,
    /// How long it works: up to 4 digits and s, m, h, d or w (`90d`); absent, it never
    /// expires.
    #[schema(example = "90d", pattern = "^[1-9][0-9]{0,3}[smhdw]$")]
    expires_in: Option<String>,
}

#[utoipa::path(
    get, path = "/tokens", tag = "tokens",
    responses(
        (status = 200, description = "Every token, without secrets", body = TokenList),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn list_tokens(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    let tokens = state
        .store
        .list_tokens()
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    let items = tokens.into_iter().map(TokenInfo::from).collect();
    Ok(Json(TokenList { items }))
}

#[utoipa::path(
    post, path = "/tokens", tag = "tokens",
    request_body = CreateTokenBody,
    responses(
        (status = 200, description = "The token, shown this once", body = CreatedToken),
        (status = 409, description = "A token has this name already", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ValidationErrors),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Json<CreatedToken>, ApiError> {
    let (mut new, secret) = read_new_token(&body).map_err(ApiError::Validation)?;
    new.secret_hash = secret.hash();
    let token = state
        .store
        .create_token(new)
        .await
        .map_err(|err| ApiError::from_store(err, String::new))?;
    Ok(Json(CreatedToken {
        token: secret.text,
        info: token.into(),
    }))
}

/// The `{token_id}` path segment.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handler reads it
struct TokenRef {
    /// The token's public id (the 12 hex digits after `sc_`) or its name.
    #[param(min_length = 1, max_length = 100)]
    token_id: String,
}

#[utoipa::path(
    delete, path = "/tokens/{token_id}", tag = "tokens",
    params(TokenRef),
    responses(
        (status = 200, description = "The token, revoked (it stops working within a second or two)", body = TokenInfo),
        (status = 404, description = "No token has this id or name", body = ErrorBody),
        (status = 503, description = "The database is unavailable; try again shortly", body = ErrorBody),
    )
)]
pub async fn revoke_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    let revoked = state.store.revoke_token(&token).await.map_err(|err| {
        ApiError::from_store(err, || format!("No token has the id or name '{token}'"))
    })?;
    Ok(Json(revoked.into()))
}

/// The new token a body asks for (its hash still to be set), with every problem at once.
fn read_new_token(body: &Map<String, Value>) -> Result<(NewToken, Secret), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut problem = |field: &str, kind: &'static str, msg: String| {
        errors.push(FieldError::new(
            vec![Value::from("body"), Value::from(field)],
            kind,
            msg,
        ));
    };
    let name = match body.get("name") {
        Some(Value::String(name)) if valid_name(name) => Some(name.clone()),
        Some(_) => {
            let msg = "1 to 100 characters, none a control character";
            problem("name", "value_error", msg.into());
            None
        }
        None => {
            problem("name", "missing", "Field required".into());
            None
        }
    };
    let role = match body
        .get("role")
        .map(|role| role.as_str().map(str::parse::<Role>))
    {
        Some(Some(Ok(role))) => Some(role),
        None => {
            problem("role", "missing", "Field required".into());
            None
        }
        Some(_) => {
            problem(
                "role",
                "enum",
                "one of viewer, operator, admin, worker".into(),
            );
            None
        }
    };
    let scopes = match body.get("scopes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(names)) if !names.is_empty() && names.len() <= Scope::ALL.len() => {
            let parsed: Result<Vec<Scope>, String> = names
                .iter()
                .map(|name| name.as_str().ok_or_else(|| "not a string".to_string()))
                .map(|name| name.and_then(str::parse))
                .collect();
            match parsed {
                Ok(mut scopes) => {
                    scopes.sort();
                    scopes.dedup();
                    Some(scopes)
                }
                Err(why) => {
                    problem("scopes", "enum", why);
                    None
                }
            }
        }
        Some(_) => {
            problem(
                "scopes",
                "value_error",
                "a list of 1 to 11 scope names".into(),
            );
            None
        }
    };
    let expires_at = match body.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::String(lifetime)) => match parse_lifetime(lifetime) {
            Ok(lifetime) => Some(expiry(Utc::now(), lifetime)),
            Err(why) => {
                problem("expires_in", "value_error", why);
                None
            }
        },
        Some(_) => {
            problem("expires_in", "string_type", "a lifetime such as 90d".into());
            None
        }
    };
    match (name, role) {
        (Some(name), Some(role)) if errors.is_empty() => {
            let secret = Secret::generate();
            let new = NewToken {
                id: secret.id.clone(),
                name,
                role,
                scopes: scopes.unwrap_or_else(|| role.scopes()),
                secret_hash: [0; 32],
                expires_at,
            };
            Ok((new, secret))
        }
        _ => Err(errors),
    }
}
