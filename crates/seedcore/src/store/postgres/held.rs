//! A pool connection a batch slot keeps from one batch to the next (see
//! [`crate::store::coalesce`]).
//!
//! sqlx checks every connection given back to its pool with a round trip of its own (a
//! `Sync`, answered by `ReadyForQuery`) before another caller may take it; for a primary-key
//! read answered in one round trip, that check doubled the round trips. A slot that keeps its
//! connection while calls keep coming pays it once per busy spell instead of once per batch.
//!
//! Invariants: a connection is kept only after a batch that succeeded on it, and only while
//! the schema has not changed since it was taken from the pool (the pool would no longer hand
//! it out: its cached statements may be stale). Released, it goes back to the pool.

use std::time::Instant;

use sqlx::{PgConnection, PgPool, Postgres, pool::PoolConnection};

use super::errors::predates_schema_change;
use crate::store::coalesce::Held;

/// The connection a slot holds, if any, and when it was taken from the pool.
#[derive(Default)]
pub(super) struct HeldConnection {
    held: Option<(PoolConnection<Postgres>, Instant)>,
}

impl HeldConnection {
    /// The connection to run a batch on: the one held while still fit, else one from `pool`.
    pub(super) async fn connection(
        &mut self,
        pool: &PgPool,
    ) -> Result<&mut PgConnection, sqlx::Error> {
        let fit = self
            .held
            .take()
            .filter(|(_, taken)| !predates_schema_change(taken.elapsed()));
        let held = match fit {
            Some(held) => held,
            None => (pool.acquire().await?, Instant::now()),
        };
        let (conn, _) = self.held.insert(held);
        Ok(&mut **conn)
    }

    /// Keeps the connection after a batch that succeeded; gives it back after one that failed,
    /// so the pool checks it before anyone uses it again.
    pub(super) fn keep_if<T, E>(&mut self, outcome: &Result<T, E>) {
        if outcome.is_err() {
            self.held = None;
        }
    }
}

impl Held for HeldConnection {
    fn release(&mut self) {
        self.held = None;
    }
}
