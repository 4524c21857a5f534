//! Who may call the API: tokens, scopes, roles, and the one layer that checks them.
//!
//! Rules (the README's "Authentication and limits" says the same to users):
//! - every route has an [`Access`] in the table beside the routes (`api::ROUTE_ACCESS`);
//!   `/health` is always open, the routes in [`AuthSettings::open_routes`] are open too;
//! - with [`AuthMode::Auto`] (the default) the API asks for nothing until a token exists in
//!   the database; from then on every other route needs `Authorization: Bearer <token>`
//!   holding the route's scope. [`AuthMode::Off`] asks for nothing. The routes that manage
//!   tokens ([`Access::Strict`]) ask for a token whatever the mode and however many exist;
//! - a missing, unknown, revoked or expired token is 401 with `WWW-Authenticate: Bearer`; a
//!   valid token without the route's scope is 403 naming the scope; a token over its rate
//!   limit is 429 with `Retry-After`.
//!
//! Caching: a verified token row is kept in memory for [`TOKEN_CACHE`] (one second), so a
//! revoke takes effect within a second, while a busy client costs one lookup a second rather
//! than one per request. Whether any token exists is asked at most once a second until one
//! does; tokens are never deleted, so from then on the answer stays yes. `last_used_at` is
//! written at most once a minute per token and process, off the request's path.
//!
//! When the database cannot say whether a token exists, a process that has seen none lets the
//! request on: everything a handler could serve or change lives in that same database, so the
//! request meets the outage there (503), and bad input still gets its 422. `serve` asks once
//! before it listens ([`Auth::prime`]), so a server started with tokens never relies on this.
//! The token routes ([`Access::Strict`]) never skip the check.

mod command;
mod guard;
mod rate;
mod scope;
pub mod session;
mod token;

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

pub use command::{TokenCommand, bootstrap, check_exposure, run as run_command};
pub use guard::Refusal;
pub use guard::require;
pub use rate::{Limiter, RateLimit};
pub use scope::{Role, Scope, names, parse_scopes};
pub use token::{
    ApiToken, NewToken, PREFIX, Secret, StoredToken, expiry, parse_lifetime, public_id, valid_name,
};

use crate::store::{DynStore, StoreResult};

/// How long a verified token row is trusted before it is read again (so also how long a
/// revoke may take to reach a running server).
pub const TOKEN_CACHE: Duration = Duration::from_secs(1);
/// How often `last_used_at` is written for a token in use.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// The routes open without a token unless the settings say otherwise: the welcome document,
/// readiness, and the documentation.
pub const DEFAULT_OPEN_ROUTES: [&str; 4] = ["/", "/readyz", "/docs", "/openapi.json"];

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, whatever the settings (`/health`).
    Always,
    /// A token holding the scope, unless the route is one of the open routes.
    Token(Scope),
    /// A token holding the scope, always: even with no token stored, with authentication
    /// off, or with the route among the open routes (managing tokens), so that nobody gets a
    /// token over HTTP without holding one already.
    Strict(Scope),
}

impl Access {
    /// The scope a token needs, if any.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Access::Always => None,
            Access::Token(scope) | Access::Strict(scope) => Some(scope),
        }
    }
}

/// Whether the API asks for tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Once a token exists in the database, every call but the open routes needs one.
    #[default]
    Auto,
    /// Never: every route is open (`SEEDCORE_AUTH=off`).
    Off,
}

/// The authentication settings of a server.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Whether tokens are asked for.
    pub mode: AuthMode,
    /// Routes (as written in the route table, e.g. `/readyz`) open without a token;
    /// `/docs` opens the docs page and its files.
    pub open_routes: Vec<String>,
    /// How many requests each token may make; None for no limit.
    pub rate: Option<RateLimit>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::Auto,
            open_routes: DEFAULT_OPEN_ROUTES.map(String::from).to_vec(),
            rate: Some(RateLimit {
                per_second: 50.0,
                burst: 100.0,
            }),
        }
    }
}

/// The caller of a request that showed a valid token, for handlers that record who acted.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name.
    pub name: String,
}

/// The authentication state of a server: its settings, the store the tokens live in, and
/// the caches the module docs describe.
pub struct Auth {
    settings: AuthSettings,
    store: DynStore,
    limiter: Option<Limiter>,
    /// When the database last said that no token exists.
    asked_at: Mutex<Option<Instant>>,
    /// Set once a token was seen to exist: from then on the answer stays yes.
    tokens_seen: AtomicBool,
    verified: Mutex<HashMap<String, (Instant, StoredToken)>>,
    touched: Mutex<HashMap<String, Instant>>,
    /// Browser sessions opened with a token (`session` says how they are checked).
    sessions: session::Sessions,
}

/// Who is looking at a page of the dashboard.
#[derive(Clone, Debug)]
pub enum Visitor {
    /// Nobody needs a token: every control is shown.
    Open,
    /// A logged-in session: its token's name and scopes, and the CSRF token its changes carry.
    Session {
        /// The token's name.
        name: String,
        /// The token's scopes.
        scopes: Vec<String>,
        /// The session's CSRF token.
        csrf: String,
    },
    /// Tokens are needed and the request shows no valid session.
    Anonymous,
}

impl Auth {
    /// The state of a server reading its tokens from `store`.
    pub fn new(store: DynStore, settings: AuthSettings) -> Auth {
        Auth {
            limiter: settings.rate.map(Limiter::new),
            settings,
            store,
            asked_at: Mutex::new(None),
            tokens_seen: AtomicBool::new(false),
            verified: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
            sessions: session::Sessions::default(),
        }
    }

    /// Whether tokens are asked for now (see the module docs).
    pub async fn needs_token(&self) -> bool {
        self.enforcing().await
    }

    /// Who the request's session cookie stands for.
    pub async fn visitor(&self, headers: &axum::http::HeaderMap) -> Visitor {
        if !self.enforcing().await {
            return Visitor::Open;
        }
        let Some(session) = session::session_id(headers).and_then(|id| self.sessions.get(id))
        else {
            return Visitor::Anonymous;
        };
        match guard::check(self, &session.token).await {
            Ok(token) => Visitor::Session {
                name: token.name,
                scopes: token.scopes,
                csrf: session.csrf,
            },
            Err(_) => Visitor::Anonymous,
        }
    }

    /// Opens a session for a token that checks out, returning the cookie's value.
    pub async fn log_in(&self, presented: &str) -> Result<String, Refusal> {
        let presented = presented.trim();
        guard::check(self, presented).await?;
        Ok(self.sessions.open(presented).0)
    }

    /// Closes the session the request's cookie names when `csrf` is its CSRF token;
    /// false when there is no such session or the token differs.
    pub fn log_out(&self, headers: &axum::http::HeaderMap, csrf: &str) -> bool {
        let Some(id) = session::session_id(headers) else {
            return false;
        };
        let Some(open) = self.sessions.get(id) else {
            return false;
        };
        let matches = subtle::ConstantTimeEq::ct_eq(csrf.as_bytes(), open.csrf.as_bytes());
        if bool::from(matches) {
            self.sessions.close(id);
        }
        bool::from(matches)
    }

    /// The settings this state was made with.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Whether `route` (a path of the route table) is open without a token.
    fn is_open(&self, route: &str) -> bool {
        self.settings
            .open_routes
            .iter()
            .any(|open| open == route || (open == "/docs" && route.starts_with("/docs/")))
    }

    /// Asks the database whether a token exists, so that from the first request on the
    /// answer is known (see the module docs).
    pub async fn prime(&self) -> StoreResult<bool> {
        self.ask_for_tokens(Instant::now()).await
    }

    /// Whether tokens are asked for now: never when off, else once any token exists (see the
    /// module docs for a database that does not answer).
    async fn enforcing(&self) -> bool {
        if self.settings.mode == AuthMode::Off {
            return false;
        }
        if self.tokens_seen.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        let asked = *lock(&self.asked_at);
        if asked.is_some_and(|at| now.duration_since(at) < TOKEN_CACHE) {
            return false;
        }
        match self.ask_for_tokens(now).await {
            Ok(exist) => exist,
            Err(err) => {
                tracing::debug!(error = %err, "cannot tell whether API tokens exist");
                false
            }
        }
    }

    async fn ask_for_tokens(&self, now: Instant) -> StoreResult<bool> {
        let exist = self.store.any_tokens().await?;
        *lock(&self.asked_at) = Some(now);
        if exist {
            self.tokens_seen.store(true, Ordering::Relaxed);
        }
        Ok(exist)
    }

    /// The stored token with this public id, from the cache while it is fresh.
    async fn lookup(&self, id: &str) -> StoreResult<Option<StoredToken>> {
        let now = Instant::now();
        if let Some((at, token)) = lock(&self.verified).get(id)
            && now.duration_since(*at) < TOKEN_CACHE
        {
            return Ok(Some(token.clone()));
        }
        let found = self.store.find_token(id).await?;
        if let Some(token) = &found {
            lock(&self.verified).insert(id.to_string(), (now, token.clone()));
        }
        Ok(found)
    }

    /// Records the use of a token, at most once per [`TOUCH_EVERY`], without waiting.
    fn touch(&self, id: &str) {
        let now = Instant::now();
        {
            let mut touched = lock(&self.touched);
            if touched
                .get(id)
                .is_some_and(|at| now.duration_since(*at) < TOUCH_EVERY)
            {
                return;
            }
            touched.insert(id.to_string(), now);
        }
        let store = self.store.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            if let Err(err) = store.touch_token(&id).await {
                tracing::warn!(token = %id, error = %err, "cannot record a token's last use");
            }
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
