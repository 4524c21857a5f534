//! `seedcore db import-legacy`: moves the file-based system's `facts.json` and `tasks.json`
//! into the store.
//!
//! Invariants: records are mapped by [`crate::legacy`]; a malformed record is reported with its
//! position and skipped, or (strict) stops the import before anything is written; ids are kept
//! and ids already stored are left alone, so running the import again changes nothing; facts go
//! first so that tasks can refer to them; a dry run reads the store but writes nothing.

use std::{fs::File, io::BufReader, path::PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    legacy::{self, LegacyTask, Rejected, RunningTasks},
    model::Fact,
    store::{DynStore, RecordKind, StoreError},
};

/// Records written per transaction: an interrupted import keeps what it wrote, and a second
/// run picks up the rest.
const BATCH: usize = 1000;

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The old `tasks.json`, if tasks are to be imported.
    pub tasks: Option<PathBuf>,
    /// The old `facts.json`, if facts are to be imported.
    pub facts: Option<PathBuf>,
    /// Read the files and the store, write nothing; report what would be imported.
    pub dry_run: bool,
    /// Import nothing if any record is malformed (else malformed records are skipped).
    pub strict: bool,
    /// What becomes of tasks that were `running` in the old system.
    pub running: RunningTasks,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
}

/// What happened to the records of one kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindSummary {
    /// Records in the file, good and malformed.
    pub read: usize,
    /// Stored by this run (with a dry run: would have been).
    pub imported: u64,
    /// Skipped because a record with the same id is stored already.
    pub already_present: u64,
    /// Malformed records, skipped, with why.
    pub rejected: Vec<Rejected>,
}

/// What an import did, per kind of record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// None when no facts file was given.
    pub facts: Option<KindSummary>,
    /// None when no tasks file was given.
    pub tasks: Option<KindSummary>,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file cannot be read, is not JSON, or lacks its `{"tasks"|"facts": [...]}` list.
    #[error("{path}: {reason}")]
    File {
        /// The file as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Strict mode found malformed records (all of them listed); nothing was written.
    #[error("{} malformed record(s) and --strict: nothing was imported", .0.len())]
    Strict(Vec<Rejected>),
    /// Reading or writing the store failed; batches written before stay written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports the files `options` names, facts first, in batches of 1000 records per transaction.
pub async fn import(
    store: &DynStore,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let facts = match &options.facts {
        Some(path) => Some(mapped(path, "facts", legacy::fact)?),
        None => None,
    };
    let tasks = match &options.tasks {
        Some(path) => Some(mapped(path, "tasks", |i, r| {
            legacy::task(i, r, options.running)
        })?),
        None => None,
    };
    if options.strict {
        let rejected: Vec<Rejected> = facts
            .iter()
            .flat_map(|f| f.1.clone())
            .chain(tasks.iter().flat_map(|t| t.1.clone()))
            .collect();
        if !rejected.is_empty() {
            return Err(ImportError::Strict(rejected));
        }
    }
    let mut summary = ImportSummary::default();
    if let Some(facts) = facts {
        let import = async |batch: &[Fact]| store.import_facts(batch).await;
        summary.facts = Some(write(store, options, RecordKind::Fact, facts, import).await?);
    }
    if let Some(tasks) = tasks {
        let import = async |batch: &[LegacyTask]| store.import_tasks(batch).await;
        summary.tasks = Some(write(store, options, RecordKind::Task, tasks, import).await?);
    }
    Ok(summary)
}

/// A file's records, mapped: the good ones and the rejected ones.
fn mapped<T>(
    path: &PathBuf,
    key: &str,
    map: impl Fn(usize, &Value) -> Result<T, Rejected>,
) -> Result<(Vec<T>, Vec<Rejected>), ImportError> {
    let file_error = |reason: String| ImportError::File {
        path: path.display().to_string(),
        reason,
    };
    let file = File::open(path).map_err(|err| file_error(err.to_string()))?;
    let document: Value = serde_json::from_reader(BufReader::new(file))
        .map_err(|err| file_error(format!("not valid JSON: {err}")))?;
    let records = legacy::records(&document, key).map_err(file_error)?;
    let mut good = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match map(index, record) {
            Ok(item) => good.push(item),
            Err(why) => rejected.push(why),
        }
    }
    Ok((good, rejected))
}

/// Records the store can import.
trait Importable {
    fn id(&self) -> Uuid;
}

impl Importable for Fact {
    fn id(&self) -> Uuid {
        self.id
    }
}

impl Importable for LegacyTask {
    fn id(&self) -> Uuid {
        self.id
    }
}

async fn write<T: Importable>(
    store: &DynStore,
    options: &ImportOptions,
    kind: RecordKind,
    (records, rejected): (Vec<T>, Vec<Rejected>),
    import: impl AsyncFn(&[T]) -> Result<u64, StoreError>,
) -> Result<KindSummary, ImportError> {
    let read = records.len() + rejected.len();
    let mut summary = KindSummary {
        read,
        rejected,
        ..KindSummary::default()
    };
    let bar = progress_bar(options.progress, kind, records.len());
    for batch in records.chunks(BATCH) {
        let new = if options.dry_run {
            let ids: Vec<Uuid> = batch.iter().map(Importable::id).collect();
            (batch.len() - store.stored_ids(kind, &ids).await?.len()) as u64
        } else {
            import(batch).await?
        };
        summary.imported += new;
        summary.already_present += batch.len() as u64 - new;
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    Ok(summary)
}

fn progress_bar(visible: bool, kind: RecordKind, total: usize) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    let label = match kind {
        RecordKind::Fact => "facts",
        RecordKind::Task => "tasks",
    };
    let style = ProgressStyle::with_template(&format!(
        "{label:>5} [{{bar:40}}] {{pos}}/{{len}} ({{per_sec}}, {{eta}} left)"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}

impl KindSummary {
    /// One line, then up to `limit` rejected records with their reasons.
    pub fn describe(&self, kind: &str, dry_run: bool, limit: usize) -> String {
        let verb = if dry_run {
            "would be imported"
        } else {
            "imported"
        };
        let mut text = format!(
            "{kind}: {} read, {} {verb}, {} already present, {} rejected",
            self.read,
            self.imported,
            self.already_present,
            self.rejected.len()
        );
        for rejected in self.rejected.iter().take(limit) {
            text.push_str(&format!("\n  {rejected}"));
        }
        if self.rejected.len() > limit {
            text.push_str(&format!("\n  ... and {} more", self.rejected.len() - limit));
        }
        text
    }
}
