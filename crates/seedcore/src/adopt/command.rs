//! `seedcore db adopt` as the user sees it: the plan printed before anything changes, each
//! step's progress while the transaction runs, and the outcome.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;

use super::{AdoptError, AdoptOptions, Found, Plan, apply::Progress};

/// Prints the plan, then (unless `dry_run`) runs it, telling how far it got.
pub async fn run(pool: &PgPool, options: &AdoptOptions, dry_run: bool) -> Result<(), AdoptError> {
    let plan = match super::prepare(pool, options).await? {
        Found::Empty => {
            println!(
                "nothing to adopt: there is no tasks table here (`seedcore db init` creates \
                 seedcore's tables)"
            );
            return Ok(());
        }
        Found::Seedcore => {
            println!("nothing to adopt: seedcore already manages this database");
            return Ok(());
        }
        Found::Original(plan) => plan,
    };
    print_plan(&plan, dry_run);
    if dry_run {
        println!("dry run: nothing was changed");
        return Ok(());
    }
    let spinner = spinner();
    let adopted = super::apply::run(pool, &plan, options, |progress| match progress {
        Progress::Started {
            number,
            total,
            what,
        } => {
            spinner.set_message(format!("[{number}/{total}] {what}"));
            spinner.suspend(|| print!("[{number:>2}/{total}] {what} … "));
        }
        Progress::Done { took } => {
            spinner.suspend(|| {
                println!("done in {:.1}s", took.as_secs_f64());
                let _ = std::io::stdout().flush();
            });
        }
    })
    .await;
    spinner.finish_and_clear();
    let adopted = adopted?;
    println!(
        "adopted: {} tasks and {} facts in {:.1}s; seedcore's migrations are recorded, so \
         `seedcore db init` and `seedcore serve` take it from here",
        adopted.tasks,
        adopted.facts,
        adopted.elapsed.as_secs_f64()
    );
    Ok(())
}

fn print_plan(plan: &Plan, dry_run: bool) {
    let catalog = &plan.catalog;
    println!(
        "found the original service's schema: {} tasks, {} facts",
        catalog.task_rows, catalog.fact_rows
    );
    let verb = if dry_run { "would make" } else { "will make" };
    println!("adoption {verb} these changes, in one transaction:");
    for (index, step) in plan.steps.iter().enumerate() {
        println!("  {:>2}. {}", index + 1, step.what);
    }
    if !plan.kept.is_empty() {
        println!("kept as they are:");
        for kept in &plan.kept {
            println!("  - {kept}");
        }
    }
}

/// A spinner with the running step on a terminal; hidden otherwise, where the step lines
/// alone tell the progress.
fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let spinner = ProgressBar::new_spinner();
    let style = ProgressStyle::with_template("{spinner} {elapsed} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    spinner.set_style(style);
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    spinner
}
