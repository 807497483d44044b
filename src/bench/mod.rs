//! `manage bench`: the hot paths against their floors, in one run on one
//! cluster, as ratios. One file per part; each starts what it measures
//! with through [`crate::instruments`].
//!
//! - Seeding: `seed_large_table` (a child process, so its peak RSS is its
//!   own) against `INSERT INTO <copy of the table> SELECT .. FROM
//!   generate_series`, the same rows with PostgreSQL doing all the work. Both
//!   are logged (crash-safe), both maintain the primary key while loading.
//!   Seeding also runs at a tenth of the rows, to show its memory is flat.
//! - Backfill: 0004 at several batch sizes, a read probe running, against
//!   one plain `UPDATE` of the whole table (rolled back), from the same
//!   vacuumed state each time.
//! - Endpoint: `wrk` on `/list_large/` against `pgbench` running the same
//!   SELECT on the same cluster.
//! - Recipes: each safe DDL recipe (an index built concurrently, a foreign
//!   key validated apart, NOT NULL through a check) against the one
//!   statement it does the work of (rolled back), a write probe running:
//!   what letting writes through costs in time, and what it spares them.

pub mod backfill;
pub mod endpoint;
pub mod instruments;
pub mod recipes;
pub mod seeding;

use std::io::Write;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::{self, DbError};
use crate::instruments::{InstrumentError, Instruments, ServerSetup, Setup};
use crate::migrations::runner::{self, MigrateOptions};
use crate::scenarios::Scenario;

pub use backfill::backfill;
pub use endpoint::{endpoint, parse_wrk};
pub use instruments::instruments;
pub use recipes::recipes;
pub use seeding::{seed_rows, seeding};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Migrate(#[from] runner::MigrateError),
    #[error(transparent)]
    Backfill(#[from] crate::backfill::BackfillError),
    #[error(transparent)]
    Instruments(#[from] InstrumentError),
    #[error("{what}: {detail}")]
    Tool { what: String, detail: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One measured figure next to its floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub ours: f64,
    pub floor: Option<f64>,
    pub unit: String,
    /// ours / floor (time: lower is better; throughput: higher is better).
    pub ratio: Option<f64>,
    pub target: String,
}

impl Figure {
    pub fn new(
        name: impl Into<String>,
        ours: f64,
        floor: Option<f64>,
        unit: &str,
        target: &str,
    ) -> Self {
        let ratio = floor.filter(|f| *f > 0.0).map(|f| ours / f);
        Figure {
            name: name.into(),
            ours,
            floor,
            unit: unit.to_owned(),
            ratio,
            target: target.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub project: String,
    pub rows: u64,
    pub postgres: String,
    pub figures: Vec<Figure>,
}

pub fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// A migrator's connection to the database on the safe path, just before
/// migration `version`: the risky step as the safe path takes it (run or
/// faked), then every step up to `version`.
pub fn just_before(
    database_url: &str,
    scenario: &'static Scenario,
    version: &str,
) -> Result<PgConnection, BenchError> {
    let mut conn = db::connect(database_url)?;
    db::mark_migrator(&mut conn)?;
    crate::interrupt::on_ctrl_c_cancel(database_url, crate::interrupt::backend_pid(&mut conn)?);
    let sink = &mut std::io::sink();
    let options = |fake| MigrateOptions {
        fake,
        ..MigrateOptions::default()
    };
    runner::migrate(
        &mut conn,
        scenario,
        Some(scenario.risky),
        options(scenario.safe_path_fakes_risky),
        sink,
    )?;
    let before = scenario.version_before(version);
    runner::migrate(&mut conn, scenario, Some(before), options(false), sink)?;
    // the benchmark's own VACUUMs wait for autovacuum like any maintenance
    // job (the runner left the migrations' short lock_timeout on the session)
    conn.batch_execute("SET lock_timeout = 0")?;
    Ok(conn)
}

/// The lab's server as `runserver` sets it up (pool size, workers), with
/// what else `setup` asks for.
pub fn with_server(scenario: &'static Scenario, setup: Setup) -> Result<Instruments, BenchError> {
    Ok(Instruments::start(Setup {
        server: Some(ServerSetup {
            scenario,
            connections: db::default_pool_size(),
            workers: crate::web::default_workers(),
            release: crate::scenarios::Release::default(),
        }),
        ..setup
    })?)
}

/// The table's cells: figure, ours, floor, ratio, target.
fn cells(report: &BenchReport) -> Vec<[String; 5]> {
    report
        .figures
        .iter()
        .map(|f| {
            let show = |v: f64| format!("{v:.2} {}", f.unit);
            [
                f.name.clone(),
                show(f.ours),
                f.floor.map_or_else(|| "-".to_owned(), show),
                f.ratio
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x")),
                f.target.clone(),
            ]
        })
        .collect()
}

const HEADER: [&str; 5] = ["figure", "ours", "floor", "ratio", "target"];

fn title(report: &BenchReport) -> String {
    format!(
        "{}: {} rows, {}",
        report.project,
        indicatif::HumanCount(report.rows),
        report.postgres
    )
}

/// The benchmark's table, aligned for a terminal.
pub fn write_table(out: &mut dyn Write, report: &BenchReport) -> std::io::Result<()> {
    let rows = cells(report);
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([HEADER[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..4).map(width).collect();
    writeln!(out, "\n{}", title(report))?;
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )?;
    }
    Ok(())
}

/// The same table in Markdown, as the README shows it.
pub fn write_markdown(out: &mut dyn Write, report: &BenchReport) -> std::io::Result<()> {
    writeln!(out, "{}\n", title(report))?;
    writeln!(out, "| {} |", HEADER.join(" | "))?;
    writeln!(out, "|---|---:|---:|---:|---|")?;
    for mut row in cells(report) {
        // an indented figure belongs to the one above it
        if let Some(sub) = row[0].strip_prefix("  ") {
            row[0] = format!("↳ {}", sub.trim());
        }
        writeln!(out, "| {} |", row.map(|c| c.trim().to_owned()).join(" | "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::endpoint::{parse_wrk, pgbench_script, wrk_ms};

    #[test]
    fn wrk_output_is_read() {
        let out = "Running 10s test @ http://127.0.0.1:1/list_large/\n  Latency Distribution\n     50%  850.00us\n     75%    1.20ms\n     90%    2.00ms\n     99%    4.10ms\n  123 requests in 10.00s\nRequests/sec:  12345.67\n";
        assert_eq!(parse_wrk(out), Some((12345.67, 0.85, 4.1)));
        assert_eq!(wrk_ms("1.02s"), Some(1020.0));
    }

    #[test]
    fn pgbench_script_hides_colons_in_literals_only() {
        assert_eq!(
            pgbench_script("SELECT to_char(t::timestamptz, 'HH24:MI:SS'), 'a''b' FROM x"),
            "SELECT to_char(t::timestamptz, E'HH24\\x3aMI\\x3aSS'), 'a''b' FROM x;\n"
        );
    }
}
