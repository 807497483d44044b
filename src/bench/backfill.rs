//! Backfill: 0004 at several batch sizes, a read probe running, against
//! one plain `UPDATE` of the whole table (rolled back), from the same
//! vacuumed state each time; within a budget too, and with a standby, the
//! lag each run caused.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::{BenchError, Figure, just_before};
use crate::backfill::{self, BackfillOptions, BackfillSpec};
use crate::budget::{Limits, Paused};
use crate::db::Databases;
use crate::instruments::probe::{self, Method, Sample};
use crate::instruments::{Instruments, ProbeSpec, ReplicaSetup, Setup, Target, replica};
use crate::retry::LockPolicy;
use crate::scenarios::Scenario;
use crate::timing;

/// The runs to measure: fixed batch sizes, and batches that adapt to take
/// about `time` each.
#[derive(Debug, Clone, Copy)]
pub struct Batches<'a> {
    pub sizes: &'a [u64],
    pub time: Duration,
}

/// The budgeted run, if any: its limits, and where its lines go.
#[derive(Debug, Clone, Copy)]
pub struct BudgetRun<'a> {
    pub limits: Option<Limits>,
    pub log: &'a Path,
}

/// One measured run: when it ran, and when the standby had replayed it
/// (its end, without one): the lag a run causes lasts until then.
struct Run {
    name: String,
    from: f64,
    to: f64,
    replayed: f64,
    /// Within a budget: the time it paused.
    budget: Option<Paused>,
}

/// How long the bench waits for a standby to replay one run.
const REPLAY_PATIENCE: Duration = Duration::from_secs(600);

/// What every run of the part works with.
struct Bench<'a> {
    conn: PgConnection,
    databases: Databases<'a>,
    instruments: Instruments,
    specs: &'static [BackfillSpec],
    large: &'static str,
    status: &'a dyn Fn(&str),
}

impl Bench<'_> {
    /// Waits until the standby (if any) has replayed everything: the
    /// moment on the timeline a run's lag ends.
    fn replayed(&self) -> Result<f64, BenchError> {
        if let Some(url) = self.databases.replica {
            (self.status)("waiting for the standby to replay it");
            replica::caught_up(self.databases.primary, url, REPLAY_PATIENCE)?;
        }
        Ok(self.instruments.now_ms())
    }

    /// One backfill run from a vacuumed table, then cleared again.
    fn measure(
        &mut self,
        name: String,
        run: BackfillOptions,
        log: &Path,
    ) -> Result<Run, BenchError> {
        self.conn
            .batch_execute(&format!("VACUUM ANALYZE {}", self.large))?;
        self.replayed()?;
        (self.status)(&format!("backfill, {name}"));
        let budgeted = run.budget.is_set();
        let mut out: Box<dyn Write> = match budgeted {
            true => Box::new(std::fs::File::create(log)?),
            false => Box::new(std::io::sink()),
        };
        let from = self.instruments.now_ms();
        let filled = backfill::run(&mut self.conn, self.specs, run, &mut out)?;
        let to = self.instruments.now_ms();
        let measured = Run {
            name,
            from,
            to,
            replayed: self.replayed()?,
            budget: budgeted.then_some(filled.paused),
        };
        (self.status)("clearing it again");
        let clear = BackfillOptions {
            batch_time: None,
            ..fixed(1_000_000)
        };
        backfill::revert(&mut self.conn, self.specs, clear, &mut std::io::sink())?;
        Ok(measured)
    }

    /// The floor: one plain UPDATE of the whole table, rolled back.
    fn floor(&mut self) -> Result<Run, BenchError> {
        self.conn
            .batch_execute(&format!("VACUUM ANALYZE {}", self.large))?;
        self.replayed()?;
        (self.status)("the floor: one plain UPDATE of the whole table (rolled back)");
        let from = self.instruments.now_ms();
        if let Some(spec) = self.specs.last() {
            self.conn.batch_execute(&format!(
                "BEGIN; UPDATE {} SET {} = {}; ROLLBACK",
                spec.table, spec.column, spec.value
            ))?;
        }
        let to = self.instruments.now_ms();
        Ok(Run {
            name: "one plain UPDATE".to_owned(),
            from,
            to,
            replayed: self.replayed()?,
            budget: None,
        })
    }
}

/// A run with batches of `size`, no budget.
fn fixed(size: u64) -> BackfillOptions {
    BackfillOptions {
        batch_size: size,
        batch_time: None,
        pause: Duration::ZERO,
        progress: false,
        lock: Some(LockPolicy::default()),
        vacuum_every: None,
        budget: Default::default(),
    }
}

/// The backfill at each batch size, adapting to a batch time, within a
/// budget (its lines go to the budget's log), and the plain UPDATE, with a
/// read probe; with a standby, the lag each allowed.
pub fn backfill(
    databases: Databases<'_>,
    scenario: &'static Scenario,
    batches: Batches<'_>,
    budget: BudgetRun<'_>,
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    let Some((version, recipe)) = scenario
        .rust_migrations
        .iter()
        .find_map(|(v, r)| r.backfill().map(|backfill| (*v, backfill)))
    else {
        return Ok(Vec::new());
    };
    let conn = just_before(databases.primary, scenario, version)?;
    if let Some(url) = databases.replica {
        replica::connect_when_there(url, REPLAY_PATIENCE)?;
    }
    let instruments = super::with_server(scenario, setup(scenario, databases))?;
    let own_health = instruments.url(scenario.read_probe).unwrap_or_default();
    let mut bench = Bench {
        conn,
        databases,
        instruments,
        specs: recipe.specs,
        large: scenario.large_table(),
        status,
    };
    let adaptive = BackfillOptions {
        batch_time: Some(batches.time),
        ..fixed(recipe.default_batch_size)
    };
    let about = format!("batches of about {:.2} s", batches.time.as_secs_f64());
    let walks = batches
        .sizes
        .iter()
        .map(|&size| {
            (
                format!("batches of {}", indicatif::HumanCount(size)),
                fixed(size),
            )
        })
        .chain([(about.clone(), adaptive)])
        .chain(budget.limits.map(|limits| {
            (
                format!("{about} within a budget ({})", limits.words()),
                BackfillOptions {
                    budget: limits.on(databases, &own_health),
                    ..adaptive
                },
            )
        }));
    let mut runs = Vec::new();
    for (name, run) in walks {
        let name = format!("backfill {version}, {name}");
        runs.push(bench.measure(name, run, budget.log)?);
    }
    let floor = bench.floor()?;
    let measured = bench.instruments.finish();
    let max_lag = budget.limits.and_then(|l| l.max_replica_lag);
    Ok(backfill_figures(
        measured.samples(READS),
        measured.wal.as_deref(),
        (runs, floor),
        max_lag,
    ))
}

const READS: &str = "reads";

/// A read probe every 20 ms, and the standby if there is one.
fn setup(scenario: &'static Scenario, databases: Databases<'_>) -> Setup {
    Setup {
        probes: vec![ProbeSpec {
            label: READS.to_owned(),
            target: Target::Lab(scenario.read_probe),
            method: Method::Get,
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(3),
        }],
        replica: databases.replica.map(|url| ReplicaSetup {
            url: url.to_owned(),
            table: scenario.large_table().to_owned(),
        }),
        ..Setup::on(databases.primary)
    }
}

/// Each backfill run's time against the plain UPDATE's, the reads' p99
/// during each, and with a standby, the lag each caused (until it was
/// replayed) and the WAL it wrote.
fn backfill_figures(
    samples: &[Sample],
    wal: Option<&[replica::WalSample]>,
    (runs, floor): (Vec<Run>, Run),
    max_lag: Option<Duration>,
) -> Vec<Figure> {
    let floor_s = (floor.to - floor.from) / 1000.0;
    let mut figures = Vec::new();
    let lag = |run: &Run, target: String, figures: &mut Vec<Figure>| {
        if let Some(wal) = wal {
            let (bytes, seconds, _) = replica::over(wal, (run.from, run.replayed));
            figures.push(Figure::new(
                format!(
                    "  replica lag: peak (it wrote {} of WAL)",
                    timing::mib(bytes)
                ),
                seconds,
                None,
                "s",
                &target,
            ));
        }
    };
    let reads = |run: &Run, target: &str, figures: &mut Vec<Figure>| {
        let reads = probe::summarize_during(samples, (run.from, run.to));
        figures.push(Figure::new(
            format!(
                "  reads during it: p99 ({} failed of {})",
                reads.failures, reads.requests
            ),
            reads.p99_ms,
            None,
            "ms",
            target,
        ));
    };
    for run in &runs {
        figures.push(Figure::new(
            run.name.clone(),
            (run.to - run.from) / 1000.0,
            Some(floor_s),
            "s",
            if run.budget.is_some() {
                "<= 2x"
            } else {
                "<= 1.5x"
            },
        ));
        if let Some(paused) = run.budget {
            figures.push(Figure::new(
                format!("  of which paused by the budget ({} pauses)", paused.pauses),
                paused.time.as_secs_f64(),
                None,
                "s",
                "",
            ));
        }
        reads(run, "< 100 ms, 0 failed", &mut figures);
        let limit = max_lag
            .filter(|_| run.budget.is_some())
            .map(|max| format!("its limit, {:.1} s", max.as_secs_f64()))
            .unwrap_or_default();
        lag(run, limit, &mut figures);
    }
    figures.push(Figure::new(
        format!("{} (the floor)", floor.name),
        floor_s,
        Some(floor_s),
        "s",
        "",
    ));
    reads(&floor, "", &mut figures);
    lag(&floor, String::new(), &mut figures);
    figures
}
