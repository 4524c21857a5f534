//! API tokens: how one is made, shown, stored and checked.
//!
//! A token reads `sc_<id>_<secret>`: `sc_` so that secret scanners recognise a leaked one, a
//! public `id` (12 hex digits) that names its row, and a secret of 256 random bits (64 hex
//! digits). The database keeps only the SHA-256 of the whole token. A fast hash is right
//! here, unlike for passwords: with 256 bits of entropy nobody can guess their way to a
//! preimage, so a slow key-derivation function would only cost every request time. Hashes
//! are compared in constant time, so response timing says nothing about how much matched.
//!
//! Invariant: the secret is printed once, when the token is made, and is never stored,
//! logged or listed.

use std::{fmt, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::scope::{Role, Scope};

/// The prefix every token starts with.
pub const PREFIX: &str = "sc_";
const ID_HEX: usize = 12;
const SECRET_HEX: usize = 64;

/// A token as listed: everything but its secret.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiToken {
    /// The public id (the part after `sc_`).
    pub id: String,
    /// The unique name it was given.
    pub name: String,
    /// The role it was made with.
    pub role: String,
    /// The scopes it holds.
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last used (written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working; None for never.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token may be used at `now`: not revoked, not expired.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }

    /// Whether the token holds `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|held| held == scope.as_str())
    }
}

/// A token row to store.
#[derive(Clone, Debug)]
pub struct NewToken {
    /// The public id.
    pub id: String,
    /// A unique name.
    pub name: String,
    /// The role it is made with.
    pub role: Role,
    /// The scopes it holds (its role's unless chosen).
    pub scopes: Vec<Scope>,
    /// The SHA-256 of the whole token.
    pub secret_hash: [u8; 32],
    /// When it stops working; None for never.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token row with the hash it is checked against.
#[derive(Clone, Debug)]
pub struct StoredToken {
    /// The row.
    pub token: ApiToken,
    /// The SHA-256 of the whole token.
    pub secret_hash: Vec<u8>,
}

impl StoredToken {
    /// Whether `presented` is this token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        hash(presented).ct_eq(self.secret_hash.as_slice()).into()
    }
}

/// A freshly made token: its full text (shown once) and its parts.
pub struct Secret {
    /// The public id.
    pub id: String,
    /// The whole token, `sc_<id>_<secret>`.
    pub text: String,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret {{ id: {}, text: <redacted> }}", self.id)
    }
}

impl Secret {
    /// A new token from the thread's generator, a CSPRNG seeded by the operating system.
    pub fn generate() -> Secret {
        let id = hex(&rand::random::<[u8; ID_HEX / 2]>());
        let secret = hex(&rand::random::<[u8; SECRET_HEX / 2]>());
        Secret {
            text: format!("{PREFIX}{id}_{secret}"),
            id,
        }
    }

    /// A token given as text (e.g. `SEEDCORE_BOOTSTRAP_TOKEN`), if it has the right shape.
    pub fn from_text(text: &str) -> Result<Secret, String> {
        public_id(text)
            .filter(|_| text.len() == PREFIX.len() + ID_HEX + 1 + SECRET_HEX)
            .map(|id| Secret {
                id: id.to_string(),
                text: text.to_string(),
            })
            .ok_or_else(|| {
                "a token reads sc_<12 hex digits>_<64 hex digits>; make one with \
                 `seedcore token generate`"
                    .to_string()
            })
    }

    /// The SHA-256 the database keeps.
    pub fn hash(&self) -> [u8; 32] {
        hash(&self.text)
    }
}

/// The public id of a token-shaped string, or None when it does not have the shape.
pub fn public_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, ID_HEX) && hex_of(secret, SECRET_HEX)).then_some(id)
}

fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A lifetime such as `90d`, `12h`, `30m`, `45s` or `2w`: 1 to 9999 of a unit.
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("'{text}' is not a lifetime: write 1 to 9999 and s, m, h, d or w (e.g. 90d)");
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text
        .split_at_checked(split)
        .filter(|(number, _)| (1..=4).contains(&number.len()))
        .ok_or_else(bad)?;
    if number.starts_with('0') || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    // At most 9999 weeks: no overflow anywhere.
    Ok(Duration::from_secs(number * unit))
}

/// Whether `name` may name a token: 1 to 100 characters, none of them a control character.
pub fn valid_name(name: &str) -> bool {
    (1..=100).contains(&name.chars().count()) && !name.chars().any(char::is_control)
}

/// When a token made at `now` with `lifetime` expires.
pub fn expiry(now: DateTime<Utc>, lifetime: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(lifetime)
        .ok()
        .and_then(|span| now.checked_add_signed(span))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_has_the_prefix_and_reads_back() {
        let secret = Secret::generate();
        assert!(secret.text.starts_with("sc_"));
        assert_eq!(public_id(&secret.text), Some(secret.id.as_str()));
        assert_eq!(
            Secret::from_text(&secret.text).unwrap().hash(),
            secret.hash()
        );
        assert_ne!(Secret::generate().text, secret.text);
    }

    #[test]
    fn malformed_tokens_have_no_public_id() {
        let good = Secret::generate().text;
        for bad in [
            "",
            "sc_",
            &good[1..],
            &good[..good.len() - 1],
            &good.replace("sc_", "xx_"),
            &format!("{good}0"),
            "sc_zzzzzzzzzzzz_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(public_id(bad), None, "{bad}");
            assert!(Secret::from_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stored_token_matches_only_its_own_text() {
        let secret = Secret::generate();
        let other = Secret::generate();
        let stored = StoredToken {
            token: ApiToken {
                id: secret.id.clone(),
                name: "ci".into(),
                role: "viewer".into(),
                scopes: vec!["tasks:read".into()],
                created_at: Utc::now(),
                last_used_at: None,
                expires_at: None,
                revoked_at: None,
            },
            secret_hash: secret.hash().to_vec(),
        };
        assert!(stored.matches(&secret.text));
        assert!(!stored.matches(&other.text));
        assert!(stored.token.allows(Scope::TasksRead));
        assert!(!stored.token.allows(Scope::TasksWrite));
    }

    #[test]
    fn lifetimes_read_in_their_units_and_refuse_the_rest() {
        assert_eq!(parse_lifetime("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_lifetime("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_lifetime("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(
            parse_lifetime("9999w"),
            Ok(Duration::from_secs(9999 * 604_800))
        );
        for bad in [
            "", "d", "90", "0d", "01d", "-1d", "+1d", " 1d", "1y", "10000w", "1.5h", "é", "1é",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
