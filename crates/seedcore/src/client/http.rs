//! The HTTP side of the command-line client: one [`Api`] per command, holding the server's
//! base URL and the bearer token, and the translation of every answer that is not a success
//! into a [`ClientError`] carrying the contract's `detail` and the exit code it maps to.
//!
//! Invariant: a server error never reaches the user as a raw body dump; a `{"detail": ...}`
//! body is rendered as its message (or one line per validation problem), anything else as
//! the status line.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use super::{ClientError, Exit};

/// A server reached over HTTP.
#[derive(Clone, Debug)]
pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8000`), sending `token` as
    /// `Authorization: Bearer` when given.
    pub fn new(base: &str, token: Option<String>) -> Result<Api, ClientError> {
        let parsed = url::Url::parse(base)
            .map_err(|err| ClientError::usage(format!("--url {base:?} is not a URL: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::usage(format!(
                "--url {base:?} must start with http:// or https://"
            )));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("seedcore-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ClientError::failure(format!("cannot build an HTTP client: {err}")))?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// A request to `path` (starting with `/`), with the token attached.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends the request and returns the response when it is a success.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request.send().await.map_err(|err| self.unreachable(err))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_of(response).await)
    }

    /// Sends the request and parses the answer as JSON (`null` for an empty body).
    pub async fn json(&self, request: RequestBuilder) -> Result<Value, ClientError> {
        let response = self.send(request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|err| ClientError::failure(format!("the answer was cut off: {err}")))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|err| ClientError::failure(format!("the server's answer is not JSON: {err}")))
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(self.request(Method::GET, path)).await
    }

    pub async fn get_query<Q: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<Value, ClientError> {
        self.json(self.request(Method::GET, path).query(query))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> Result<Value, ClientError> {
        self.json(self.request(Method::POST, path)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.json(self.request(Method::PATCH, path).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.json(self.request(Method::DELETE, path)).await
    }

    fn unreachable(&self, err: reqwest::Error) -> ClientError {
        // The innermost cause says what happened ("Connection refused"), the outer ones where.
        let mut why = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            why = cause.to_string();
            source = cause.source();
        }
        ClientError::failure(format!(
            "cannot reach the server at {}: {why} (is it running? set --url or SEEDCORE_URL)",
            self.base
        ))
    }
}

/// A path segment as sent: ids and names are escaped so that no input changes the route.
pub fn segment(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The error a failed answer stands for, with the exit code of its kind.
pub async fn error_of(response: Response) -> ClientError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|value| value.get("detail").map(render_detail));
    let message = detail.unwrap_or_else(|| format!("the server answered {status}"));
    ClientError {
        exit: if status == StatusCode::NOT_FOUND {
            Exit::NotFound
        } else {
            Exit::Failure
        },
        message,
        status: Some(status),
        detail: serde_json::from_str(&body).ok(),
    }
}

/// The contract's `detail`: a message, or the list of validation problems, one per line.
pub fn render_detail(detail: &Value) -> String {
    match detail {
        Value::String(message) => message.clone(),
        Value::Array(problems) => problems
            .iter()
            .map(render_problem)
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// One validation problem as `body.params: Input should be a valid dictionary`.
pub fn render_problem(problem: &Value) -> String {
    let loc = problem["loc"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .map(|part| match part {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    let msg = problem["msg"].as_str().unwrap_or("invalid");
    if loc.is_empty() {
        msg.to_string()
    } else {
        format!("{loc}: {msg}")
    }
}
