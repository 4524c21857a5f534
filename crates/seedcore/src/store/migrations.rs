//! What both backends share about their schema: the tables `verify` expects, and the report of
//! a `migrate` (each backend has its own migrations, applied by `sqlx::migrate!`).

use sqlx::migrate::Migrator;

/// Tables `verify` expects after migration.
pub(crate) const TABLES: [&str; 6] = [
    "tasks",
    "task_events",
    "facts",
    "workers",
    "workflows",
    "schedules",
];

/// What `migrate` did.
#[derive(Clone, Debug, Default)]
pub struct MigrationReport {
    /// The migrations this call applied, each as `<version> <description>`.
    pub applied: Vec<String>,
    /// How many migrations had been applied before this call.
    pub already_applied: usize,
}

impl MigrationReport {
    /// The report of running `migrator` on a database where the versions `before` had been
    /// applied already.
    pub(crate) fn of(migrator: &Migrator, before: &[i64]) -> MigrationReport {
        let applied = migrator
            .iter()
            .filter(|m| !before.contains(&m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        MigrationReport {
            applied,
            already_applied: before.len(),
        }
    }
}

/// The expected tables missing from `present`.
pub(crate) fn missing_tables(present: &[String]) -> Vec<String> {
    TABLES
        .iter()
        .filter(|t| !present.iter().any(|p| p == *t))
        .map(|t| t.to_string())
        .collect()
}
