//! Runs the planned steps on the migrating session, while the instruments
//! watch, and notes when each ran and what it rewrote.

use std::io::Write;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::plan::{Action, Planned};
use super::report::StepKind;
use super::{DemoError, DemoOptions, REPLICA_PATIENCE};
use crate::instruments::{Databases, Instruments, load, locks, replica};
use crate::migrations::runner::{self, MigrateOptions};
use crate::recipes::RunSettings;
use crate::scenarios::Scenario;

/// When a step ran (ms on the instruments' timeline), the tables it
/// rewrote, and why it did not complete, if it did not.
#[derive(Debug, Clone)]
pub struct Window {
    pub start_ms: f64,
    pub end_ms: f64,
    pub rewritten: Vec<String>,
    pub failed: Option<String>,
}

/// What the walk runs with: the plan, and how its migrations run (the
/// budgeted settings for the step that runs within a budget).
pub struct Walk<'a> {
    pub scenario: &'static Scenario,
    pub databases: Databases<'a>,
    pub planned: &'a [Planned],
    pub options: &'a DemoOptions,
    pub settings: RunSettings,
    pub budgeted: RunSettings,
}

/// Runs the planned steps, each behind a held transaction if asked, with
/// a pause after each for the queued traffic to drain (and, with a standby,
/// for it to catch up: each step's lag is its own). A step that gives up
/// ends the walk there; Ctrl-C or a dead lab server end it with an error.
pub fn walk(
    conn: &mut PgConnection,
    walk: &Walk<'_>,
    instruments: &Instruments,
    log: &mut dyn Write,
    status: &dyn Fn(&str),
) -> Result<Vec<Window>, DemoError> {
    let mut windows = Vec::new();
    for (i, step) in walk.planned.iter().enumerate() {
        let name = format!("step {}/{}: {}", i + 1, walk.planned.len(), step.name);
        let during = || format!("during {}'s {name}", walk.scenario.project());
        if crate::interrupt::requested() {
            return Err(crate::interrupt::Interrupted { during: during() }.into());
        }
        status(&name);
        let failures_before = instruments.failures_so_far();
        let window = run_step(conn, walk, step, instruments, log)
            .map_err(|error| super::interrupted_or(error, during))?;
        // a step cut short by Ctrl-C, or watched by a dead server, measured
        // nothing true: it is not reported, and nothing after it runs
        if crate::interrupt::requested() {
            return Err(crate::interrupt::Interrupted { during: during() }.into());
        }
        if let Some(detail) = instruments.lab_failure() {
            return Err(DemoError::LabFailure {
                step: format!("{}'s {name}", walk.scenario.project()),
                detail,
            });
        }
        let stop = window.failed.is_some();
        windows.push(window);
        settle(walk, status)?;
        match instruments.failures_so_far() - failures_before {
            0 => {}
            n => status(&format!(
                "  {n} request(s) failed during it (the server's own errors are in the demo's log)"
            )),
        }
        if stop {
            break;
        }
    }
    Ok(windows)
}

/// One step, timed, with the tables it rewrote.
fn run_step(
    conn: &mut PgConnection,
    walk: &Walk<'_>,
    step: &Planned,
    instruments: &Instruments,
    log: &mut dyn Write,
) -> Result<Window, DemoError> {
    let tables = walk.scenario.tables();
    let before = locks::relfilenodes(conn, &tables)?;
    let holder = match (walk.options.hold_lock, step.kind) {
        (Some(hold), kind) if kind != StepKind::Baseline && kind != StepKind::Deploy => Some(
            load::Holder::start(walk.databases.primary, walk.scenario.large_table(), hold)?,
        ),
        _ => None,
    };
    let start_ms = instruments.now_ms();
    let mut failed = None;
    match &step.action {
        Action::Wait => {
            crate::interrupt::sleep(walk.options.settle);
        }
        // a migration that gives up (its lock never came) ends the
        // walkthrough here: the report says so, and what came before
        Action::Migrate {
            target,
            fake,
            budgeted,
        } => {
            let settings = if *budgeted {
                walk.budgeted
            } else {
                walk.settings
            };
            let options = MigrateOptions {
                fake: *fake,
                plan: false,
                settings,
            };
            failed = runner::migrate(conn, walk.scenario, Some(target), options, log)
                .err()
                .map(|e| e.to_string());
        }
        Action::Naive(sql) => {
            writeln!(log, "naive, rolled back: {sql};")?;
            run_rolled_back(conn, sql)?;
        }
        Action::Deploy(new) => {
            writeln!(log, "deploy: the server now runs release {new}")?;
            instruments.release.set(*new);
        }
    }
    let end_ms = instruments.now_ms();
    drop(holder);
    let after = locks::relfilenodes(conn, &tables)?;
    let mut rewritten: Vec<String> = before
        .iter()
        .filter(|(t, node)| after.get(*t).is_some_and(|n| n != *node))
        .map(|(t, _)| t.clone())
        .collect();
    rewritten.sort();
    Ok(Window {
        start_ms,
        end_ms,
        rewritten,
        failed,
    })
}

/// The pause after a step: the queued traffic drains, the standby catches up.
fn settle(walk: &Walk<'_>, status: &dyn Fn(&str)) -> Result<(), DemoError> {
    if let Some(replica_url) = walk.databases.replica {
        status("waiting for the standby to replay the step");
        replica::caught_up(walk.databases.primary, replica_url, REPLICA_PATIENCE)?;
    }
    crate::interrupt::sleep(walk.options.settle);
    Ok(())
}

/// Runs `sql` as naive code does, with no lock_timeout, in a transaction that
/// is rolled back.
fn run_rolled_back(conn: &mut PgConnection, sql: &str) -> QueryResult<()> {
    conn.batch_execute("SET lock_timeout = 0")?;
    let result = conn.transaction::<(), _, _>(|c| {
        c.batch_execute(sql)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    match result {
        Err(diesel::result::Error::RollbackTransaction) | Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}
