//! Taking over the original service's PostgreSQL database in place (`seedcore db adopt`).
//!
//! The original keeps `tasks` and `facts` in PostgreSQL with its own column types, indexes,
//! triggers and views, and other tables may point at them with foreign keys. Adoption turns
//! those two tables into exactly what seedcore's first migration creates, records that
//! migration, then applies the remaining migrations as `db init` would.
//!
//! Invariants:
//! - Nothing is dropped and recreated except the original's views that block a column's type
//!   change (recreated with their definitions unchanged), and the original's triggers, their
//!   functions, indexes and checks that would conflict with seedcore's (each one listed).
//!   Tables are altered in place, so rows keep their ids, timestamps and attempts, and
//!   foreign keys from other tables keep holding.
//! - Columns seedcore does not know stay as they are. The one object adoption adds beyond
//!   seedcore's schema is, where other tables hold foreign keys to `tasks`, a trigger that
//!   keeps a finished task they point at in `tasks` when the rest move to `task_history`.
//! - Everything is checked before any change ([`detect`]); whatever is not understood stops
//!   adoption with a message naming the object. The plan ([`plan`]) is what `--dry-run`
//!   prints and what [`apply`] runs, in one transaction: it completes, or the database is as
//!   it was.
//! - A database seedcore already manages is left alone, so adopting twice changes nothing.

pub mod apply;
mod columns;
pub mod command;
pub mod detect;
pub mod plan;

use sqlx::PgPool;

pub use apply::{AdoptOptions, Adopted};
pub use plan::Plan;

use crate::store::{StoreError, StoreResult};

/// What stops adoption, with the sentence the user sees.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// The database holds something adoption does not understand (the message names it).
    #[error("cannot adopt this database: {0}")]
    NotUnderstood(String),
    /// The database failed a statement; the transaction was rolled back.
    #[error("adoption failed, nothing was changed: {0}")]
    Database(#[from] sqlx::Error),
    /// A step failed (the message names it); the transaction was rolled back.
    #[error("adoption failed at step {number} ({what}), nothing was changed: {source}")]
    Step {
        /// The step, from 1.
        number: usize,
        /// What it changes.
        what: String,
        /// The database's reason.
        source: sqlx::Error,
    },
    /// A step was asked to fail ([`AdoptOptions::fail_before_step`]); nothing was changed.
    #[error("adoption stopped before step {0} as asked, nothing was changed")]
    Injected(usize),
}

/// The message `db init`, `serve` and `worker` stop with on the original's database.
pub const NEEDS_ADOPT: &str = "this database holds the original service's tasks and facts \
    tables, which seedcore does not manage yet. Back it up, then run `seedcore db adopt \
    --dry-run` to see what will change and `seedcore db adopt` to take it over (see \"Coming \
    from the original service\" in the README)";

/// Fails with [`NEEDS_ADOPT`] when the database holds the original's tables and seedcore has
/// not taken it over; called before seedcore's migrations run.
pub async fn refuse_unadopted(pool: &PgPool) -> StoreResult<()> {
    match detect::state(pool).await? {
        detect::State::Original => Err(StoreError::Unsupported(NEEDS_ADOPT.into())),
        detect::State::Empty | detect::State::Seedcore => Ok(()),
    }
}

/// What the database holds, and for the original's database, the plan that adopts it.
pub enum Found {
    /// No `tasks` table: nothing to adopt (`db init` creates seedcore's tables).
    Empty,
    /// seedcore manages this database already: nothing to do.
    Seedcore,
    /// The original's tables, and the changes that adopt them.
    Original(Box<Plan>),
}

/// Reads the database and builds the plan; changes nothing. Whatever is not understood is an
/// [`AdoptError::NotUnderstood`] naming the object.
pub async fn prepare(pool: &PgPool, options: &AdoptOptions) -> Result<Found, AdoptError> {
    match detect::state(pool).await? {
        detect::State::Empty => return Ok(Found::Empty),
        detect::State::Seedcore => return Ok(Found::Seedcore),
        detect::State::Original => {}
    }
    let catalog = detect::inspect(pool).await?;
    let plan = plan::build(pool, catalog, options).await?;
    Ok(Found::Original(Box::new(plan)))
}
