//! The `seedcore token` commands, the bootstrap token and the check `serve` makes before it
//! listens: what each prints and refuses. The command line (`cli`) opens the store and hands
//! it here.

use std::net::IpAddr;

use chrono::Utc;
use clap::{Args, Subcommand};

use super::{
    ApiToken, AuthMode, NewToken, Role, Secret, expiry, parse_lifetime, parse_scopes, valid_name,
};
use crate::store::{DynStore, StoreError};

/// The subcommands of `seedcore token`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token and print it, once: only its hash is stored.
    Create(CreateArgs),
    /// List the tokens (name, role, scopes, created, last used, expiry; never the secret).
    List,
    /// Revoke a token by its id or name; it stops working within a second or two.
    Revoke(RevokeArgs),
    /// Print a fresh token without storing it, e.g. for SEEDCORE_BOOTSTRAP_TOKEN.
    Generate,
}

/// The settings of `seedcore token create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A name to tell the token by (unique), e.g. the client that uses it.
    #[arg(long)]
    pub name: String,
    /// The role: viewer, operator, admin or worker (see the README for their scopes).
    #[arg(long)]
    pub role: Role,
    /// Comma-separated scopes the token gets instead of its role's (e.g. tasks:read,facts:read).
    #[arg(long)]
    pub scopes: Option<String>,
    /// How long the token works: a number and s, m, h, d or w (e.g. 90d). Default: no expiry.
    #[arg(long)]
    pub expires_in: Option<String>,
}

/// The settings of `seedcore token revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The token's id (the 12 hex digits after `sc_`) or its name.
    pub token: String,
}

/// Runs a token command on `store`; returns what to print on stdout.
pub async fn run(store: &DynStore, command: TokenCommand) -> Result<String, String> {
    match command {
        TokenCommand::Create(args) => create(store, args).await,
        TokenCommand::List => list(store).await,
        TokenCommand::Revoke(args) => revoke(store, &args.token).await,
        TokenCommand::Generate => Ok(Secret::generate().text),
    }
}

async fn create(store: &DynStore, args: CreateArgs) -> Result<String, String> {
    let name = args.name.as_str();
    if !valid_name(name) {
        return Err("--name must be 1 to 100 characters, none a control character".into());
    }
    let scopes = match &args.scopes {
        Some(list) => parse_scopes(list)?,
        None => args.role.scopes(),
    };
    let expires_at = match &args.expires_in {
        Some(lifetime) => Some(expiry(Utc::now(), parse_lifetime(lifetime)?)),
        None => None,
    };
    let secret = Secret::generate();
    let new = NewToken {
        id: secret.id.clone(),
        name: name.to_string(),
        role: args.role,
        scopes,
        secret_hash: secret.hash(),
        expires_at,
    };
    store.create_token(new).await.map_err(|err| explain(&err))?;
    Ok(secret.text)
}

async fn list(store: &DynStore) -> Result<String, String> {
    let tokens = store.list_tokens().await.map_err(|err| explain(&err))?;
    let mut lines = vec![format!(
        "{:<12}  {:<20}  {:<8}  {:<8}  {:<20}  {:<20}  {:<20}  SCOPES",
        "ID", "NAME", "ROLE", "STATE", "CREATED", "LAST USED", "EXPIRES"
    )];
    lines.extend(tokens.iter().map(row));
    Ok(lines.join("\n"))
}

fn row(token: &ApiToken) -> String {
    let when = |at: Option<chrono::DateTime<Utc>>| {
        at.map_or("-".to_string(), |at| {
            at.format("%Y-%m-%d %H:%M:%S").to_string()
        })
    };
    let state = if token.revoked_at.is_some() {
        "revoked"
    } else if !token.usable_at(Utc::now()) {
        "expired"
    } else {
        "active"
    };
    format!(
        "{:<12}  {:<20}  {:<8}  {:<8}  {:<20}  {:<20}  {:<20}  {}",
        token.id,
        token.name,
        token.role,
        state,
        when(Some(token.created_at)),
        when(token.last_used_at),
        when(token.expires_at),
        token.scopes.join(",")
    )
}

async fn revoke(store: &DynStore, token: &str) -> Result<String, String> {
    match store.revoke_token(token).await {
        Ok(token) => Ok(format!("revoked {} ({})", token.id, token.name)),
        Err(StoreError::NotFound) => Err(format!("no token has the id or name '{token}'")),
        Err(err) => Err(explain(&err)),
    }
}

fn explain(err: &StoreError) -> String {
    match err {
        StoreError::Conflict(what) => what.clone(),
        other => format!("the database refused: {other}"),
    }
}

/// Stores `SEEDCORE_BOOTSTRAP_TOKEN` as an admin token named `bootstrap`, unless a token of
/// that id is stored already (a restart with the same setting changes nothing).
pub async fn bootstrap(store: &DynStore, text: &str) -> Result<(), String> {
    let secret =
        Secret::from_text(text.trim()).map_err(|why| format!("SEEDCORE_BOOTSTRAP_TOKEN: {why}"))?;
    if let Some(stored) = store
        .find_token(&secret.id)
        .await
        .map_err(|err| explain(&err))?
    {
        return if stored.matches(&secret.text) {
            Ok(())
        } else {
            Err(format!(
                "SEEDCORE_BOOTSTRAP_TOKEN: another token has the id {}; generate a new one",
                secret.id
            ))
        };
    }
    let new = NewToken {
        id: secret.id.clone(),
        name: "bootstrap".into(),
        role: Role::Admin,
        scopes: Role::Admin.scopes(),
        secret_hash: secret.hash(),
        expires_at: None,
    };
    match store.create_token(new).await {
        Ok(_) => {
            tracing::info!(token = %secret.id, "bootstrap admin token stored");
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Err(
            "SEEDCORE_BOOTSTRAP_TOKEN: a token named 'bootstrap' exists already with another \
             secret; revoke it, or drop the setting"
                .into(),
        ),
        Err(err) => Err(explain(&err)),
    }
}

/// Refuses to serve on an address other machines can reach with no token to protect it,
/// unless authentication is off on purpose (then it warns).
pub async fn check_exposure(store: &DynStore, host: IpAddr, mode: AuthMode) -> Result<(), String> {
    if host.is_loopback() {
        return Ok(());
    }
    if mode == AuthMode::Off {
        tracing::warn!(
            %host,
            "SEEDCORE_AUTH=off: listening on {host} with no authentication; anyone who can \
             reach this address can use the whole API"
        );
        return Ok(());
    }
    if store.any_tokens().await.map_err(|err| explain(&err))? {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {host} with no API token: anyone who can reach it could use the \
         whole API. Create a token first (`seedcore token create --name admin --role admin`, \
         with the same database settings), or set SEEDCORE_BOOTSTRAP_TOKEN (make one with \
         `seedcore token generate`), or listen on 127.0.0.1, or set SEEDCORE_AUTH=off to \
         serve without authentication on purpose."
    ))
}
