//! `manage demo`: the seed's three-terminal walkthrough, automated and measured.
//!
//! On a fresh database: migrate to 0001, seed, serve the endpoints in-process,
//! probe reads (`GET /list_large/`) and writes (`POST /large/`) all along,
//! sample the locks, and run the steps: a baseline, the risky migration, its
//! undoing, the safe path, and the naive versions of the safe steps (run in
//! a transaction that is rolled back, so both lines come from the same run).
//! Each step is then read off the common timeline: its duration, the strongest
//! lock it held and for how long, whether it rewrote a table, and what the
//! requests in flight during it saw. At the end every write the server
//! acknowledged must be in the table.

pub mod html;
pub mod load;
pub mod replica;
pub mod report;

use std::io::Write;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};

use crate::budget::Limits;
use crate::db::{self, DbError};
use crate::embedded::annotate;
use crate::locks::{self, LockMonitor};
use crate::migrations::runner::{self, MigrateError, MigrateOptions};
use crate::probe::{Method, Probe, ProbeConfig, Sample};
use crate::recipes::RunSettings;
use crate::recipes::batched_backfill::BatchedBackfill;
use crate::scenarios::endpoints::{ExtraProbe, Verb};
use crate::scenarios::{Release, Scenario};
use crate::seed::{self, SeedError};
use crate::web::{self, AppState};
use report::{OtherLock, ProjectReport, StepKind, StepReport};

#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    pub large_count: u64,
    /// Between two requests of each probe.
    pub interval: Duration,
    pub timeout: Duration,
    /// The backfill's batch size (default: the scenario's).
    pub batch_size: Option<u64>,
    /// Adapt the backfill's batches to take about this long each.
    pub batch_time: Option<Duration>,
    /// The backfill vacuums the table after this many rows.
    pub vacuum_every: Option<u64>,
    /// How long the baseline lasts, and the pause after each step.
    pub settle: Duration,
    pub progress: bool,
    /// How the safe steps wait for their locks.
    pub lock: crate::retry::LockPolicy,
    /// Before each step, a session reads the large table in a transaction
    /// it keeps open this long (the lock queue demonstration).
    pub hold_lock: Option<Duration>,
    /// Steady writers (inserts and updates) besides the write probe.
    pub writers: usize,
    /// Run the backfill a second time, on the same table, within these
    /// limits.
    pub budget: Option<Limits>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("starting the server: {0}")]
    Server(std::io::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{missing} of {acknowledged} acknowledged writes are missing from {table}: ids {ids}")]
    LostWrites {
        table: String,
        acknowledged: usize,
        missing: usize,
        ids: String,
    },
    #[error(
        "{table} has {found} rows where {expected} were written (seeded, inserted by writers, probe writes)"
    )]
    RowCount {
        table: String,
        found: i64,
        expected: i64,
    },
    /// What a recipe says does not hold after the walkthrough.
    #[error("{0}")]
    Check(String),
    /// Ctrl-C: nothing after it is measured.
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    /// The lab's own server stopped answering: what the probes saw from
    /// then on says nothing of the migration.
    #[error(
        "the lab's own server stopped answering during {step} ({detail}): its figures would blame the migration, so the walkthrough stopped and nothing of it is reported"
    )]
    LabFailure { step: String, detail: String },
}

/// What a step does.
#[derive(Debug, Clone)]
enum Action {
    Wait,
    Migrate {
        target: &'static str,
        fake: bool,
        /// Within the budget ([`DemoOptions::budget`]).
        budgeted: bool,
    },
    /// SQL run in a transaction that is rolled back.
    Naive(String),
    /// The running server (and the writers) switch to a new release of
    /// the app's code.
    Deploy(u32),
}

struct Planned {
    name: String,
    kind: StepKind,
    action: Action,
}

/// The walkthrough's steps for a scenario: a baseline, the risky migration,
/// back, then the safe path, each naive twin next to its safe step (the naive
/// NOT NULL before the safe one, since after it there is nothing left to do;
/// the naive UPDATE after the batched one, so its dead rows do not slow it).
/// With a budget, the backfill is then cleared and run again within it.
fn plan(scenario: &Scenario, budget: Option<Limits>) -> Vec<Planned> {
    let step = |name: String, kind, action| Planned { name, kind, action };
    let migrate = |target, fake| Action::Migrate {
        target,
        fake,
        budgeted: false,
    };
    let risky = scenario.risky;
    let mut steps = vec![
        step(
            "baseline (no migration)".to_owned(),
            StepKind::Baseline,
            Action::Wait,
        ),
        step(
            format!("{risky} risky: {}", title(scenario, risky)),
            StepKind::Risky,
            migrate(risky, false),
        ),
        step(
            format!("{risky} undone"),
            StepKind::Undo,
            migrate(scenario.start, false),
        ),
        if scenario.safe_path_fakes_risky {
            step(
                format!("{risky} recorded with --fake"),
                StepKind::Record,
                migrate(risky, true),
            )
        } else {
            step(
                format!("{risky} again"),
                StepKind::Risky,
                migrate(risky, false),
            )
        },
    ];
    let after_risky = scenario
        .migrations()
        .iter()
        .skip_while(|m| m.version != risky)
        .skip(1);
    for files in after_risky {
        let version = files.version;
        if let Some(deploy) = scenario.deploy.filter(|d| d.before == version) {
            steps.push(step(
                format!("deploy release {}: {}", deploy.release, deploy.what),
                StepKind::Deploy,
                Action::Deploy(deploy.release),
            ));
        }
        let Some(recipe) = scenario.rust_migration(version) else {
            steps.push(step(
                format!("{version} {}", title(scenario, version)),
                StepKind::Safe,
                migrate(version, false),
            ));
            continue;
        };
        let safe = step(
            format!("{version} {}", recipe.label()),
            StepKind::Safe,
            migrate(version, false),
        );
        let naive = recipe.naive().map(|naive| {
            (
                naive.before,
                step(
                    naive.name.to_owned(),
                    StepKind::Naive,
                    Action::Naive(naive.sql),
                ),
            )
        });
        match naive {
            Some((true, naive)) => steps.extend([naive, safe]),
            Some((false, naive)) => steps.extend([safe, naive]),
            None => steps.push(safe),
        }
        let backfill = recipe.as_any().is::<BatchedBackfill>();
        if let Some(budget) = budget.filter(|_| backfill) {
            steps.extend([
                step(
                    format!("{version} undone: cleared again, in batches"),
                    StepKind::Undo,
                    migrate(scenario.version_before(version), false),
                ),
                step(
                    format!("{version} again within a budget ({})", budget.words()),
                    StepKind::Budgeted,
                    Action::Migrate {
                        target: version,
                        fake: false,
                        budgeted: true,
                    },
                ),
            ]);
        }
    }
    steps
}

/// A migration's banner: `Adding column created_at_new`.
fn title(scenario: &Scenario, version: &str) -> String {
    scenario
        .migrations()
        .iter()
        .find(|m| m.version == version)
        .and_then(|m| annotate(m.up).banner)
        .unwrap_or_default()
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

fn since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

/// The whole walkthrough for one scenario, on the (fresh) database at
/// `database_url`. Migration output goes to `log`; `status` hears what it is
/// doing at every moment.
pub fn run_project(
    scenario: &'static Scenario,
    (database_url, replica_url): (&str, Option<&str>),
    options: DemoOptions,
    log: &mut dyn Write,
    status: &dyn Fn(&str),
) -> Result<ProjectReport, DemoError> {
    let mut conn = db::connect(database_url)?;
    db::mark_migrator(&mut conn)?;
    // Ctrl-C cancels what the walkthrough's session runs (a seed, a
    // rewrite), so the demo stops now, not at the end of the statement
    crate::interrupt::on_ctrl_c_cancel(database_url, crate::interrupt::backend_pid(&mut conn)?);
    let settings = RunSettings {
        batch_size: options.batch_size,
        batch_time: options.batch_time,
        pause: Duration::ZERO,
        progress: false,
        lock: options.lock,
        vacuum_every: options.vacuum_every,
        budget: Default::default(),
    };
    prepare(&mut conn, scenario, &options, settings, log, status)
        .map_err(|error| interrupted_or(error, || format!("{}'s set-up", scenario.project())))?;
    let postgres = db::server_version(&mut conn)?;
    if let Some(replica_url) = replica_url {
        status("waiting for the standby to replay the seeding");
        replica::connect_when_there(replica_url, REPLICA_PATIENCE)?;
        replica::caught_up(database_url, replica_url, REPLICA_PATIENCE)?;
    }
    status("starting the server, the probes and the lock monitor");
    let instruments = Instruments::start(scenario, (database_url, replica_url), &options)?;
    let planned = plan(scenario, options.budget);
    let budgeted = RunSettings {
        budget: options
            .budget
            .map(|budget| {
                budget.on(
                    (database_url, replica_url),
                    &instruments.server.url(scenario.read_probe),
                )
            })
            .unwrap_or_default(),
        ..settings
    };
    let windows = walk(
        &mut conn,
        scenario,
        (database_url, replica_url),
        (&planned, &options, (settings, budgeted)),
        &instruments,
        log,
        status,
    )?;
    if crate::interrupt::requested() {
        return Err(crate::interrupt::Interrupted {
            during: format!("at the end of {}'s walkthrough", scenario.project()),
        }
        .into());
    }
    status("stopping the probes");
    let measured = instruments.finish();
    status("checking every acknowledged write");
    report(
        &mut conn,
        scenario,
        &options,
        postgres,
        (&planned, windows),
        measured,
    )
}

/// `error`, or [`DemoError::Interrupted`] naming `during` when Ctrl-C
/// caused it (a cancelled statement fails like any other).
fn interrupted_or(error: DemoError, during: impl FnOnce() -> String) -> DemoError {
    if crate::interrupt::requested() {
        crate::interrupt::Interrupted { during: during() }.into()
    } else {
        error
    }
}

fn migrate_options(settings: RunSettings, fake: bool) -> MigrateOptions {
    MigrateOptions {
        fake,
        plan: false,
        settings,
    }
}

/// The scenario's start, seeded.
fn prepare(
    conn: &mut PgConnection,
    scenario: &'static Scenario,
    options: &DemoOptions,
    settings: RunSettings,
    log: &mut dyn Write,
    status: &dyn Fn(&str),
) -> Result<(), DemoError> {
    status(&format!("migrating to {}", scenario.start));
    runner::migrate(
        conn,
        scenario,
        Some(scenario.start),
        migrate_options(settings, false),
        log,
    )?;
    status(&format!(
        "seeding {} rows",
        indicatif::HumanCount(options.large_count)
    ));
    let plan_seed = scenario.seed_plan();
    seed::seed(
        conn,
        plan_seed,
        options.large_count,
        plan_seed.default_batch_size,
        options.progress,
        log,
    )?;
    Ok(())
}

/// What watches the walkthrough: the server, the read and write probes,
/// the lock monitor, and the steady writers.
struct Instruments {
    t0: Instant,
    server: web::Running,
    /// The release of the app's code the server and the writers run.
    release: Release,
    reads: Probe,
    writes: Probe,
    /// Asks the server's [`web::ALIVE`], which touches no database: if it
    /// fails, the server itself is down, and no migration is to blame.
    control: Probe,
    /// The scenario's other probes.
    also: Vec<(ExtraProbe, Probe)>,
    /// With a standby: a server on it, its readers, and the WAL sampler.
    replica: Option<(web::Running, Probe, replica::WalSampler)>,
    monitor: LockMonitor,
    writers: Option<load::Writers>,
}

/// What the instruments saw.
struct Measured {
    end_ms: f64,
    lock_samples: Vec<locks::LockSample>,
    writer_counts: load::WriterCounts,
    slow_writes: Vec<load::SlowWrite>,
    reads: Vec<Sample>,
    writes: Vec<Sample>,
    also: Vec<(ExtraProbe, Vec<Sample>)>,
    replica: Option<(Vec<Sample>, Vec<replica::WalSample>)>,
}

/// How long the demo waits for a standby to have the fresh database and
/// to catch up with the seeding before the baseline.
const REPLICA_PATIENCE: Duration = Duration::from_secs(300);

/// The demo server's database connections, and so its workers at most.
const SERVER_CONNECTIONS: u32 = 16;

/// How often the control probe asks the server whether it is alive.
const CONTROL_INTERVAL: Duration = Duration::from_millis(100);

/// How often the lock monitor samples `pg_locks`.
const LOCK_INTERVAL: Duration = Duration::from_millis(10);

impl Instruments {
    fn start(
        scenario: &'static Scenario,
        (database_url, replica_url): (&str, Option<&str>),
        options: &DemoOptions,
    ) -> Result<Self, DemoError> {
        let release = Release::default();
        let server = web::Running::spawn(
            AppState {
                pool: db::pool(database_url, SERVER_CONNECTIONS),
                scenario,
                release: release.clone(),
            },
            2,
        )
        .map_err(DemoError::Server)?;
        let t0 = Instant::now();
        let probe_every = |path: &str, method, interval| {
            ProbeConfig::until_stopped(server.url(path), method, interval, options.timeout)
        };
        let probe = |path: &str, method| probe_every(path, method, options.interval);
        let reads = Probe::start(probe(scenario.read_probe, Method::Get), t0, None);
        let writes = Probe::start(probe(scenario.write_probe, Method::Post), t0, None);
        let control = Probe::start(
            probe_every(web::ALIVE, Method::Get, CONTROL_INTERVAL),
            t0,
            None,
        );
        let also = scenario
            .also_probe
            .iter()
            .map(|&extra| {
                let method = match extra.verb {
                    Verb::Get => Method::Get,
                    Verb::Post => Method::Post,
                };
                let interval = options.interval * extra.slower.max(1);
                (
                    extra,
                    Probe::start(probe_every(extra.path, method, interval), t0, None),
                )
            })
            .collect();
        let replica = match replica_url {
            Some(url) => {
                // the same code, reading from the standby (writes fail there)
                let server = web::Running::spawn(
                    AppState {
                        pool: db::pool(url, SERVER_CONNECTIONS),
                        scenario,
                        release: release.clone(),
                    },
                    1,
                )
                .map_err(DemoError::Server)?;
                let reads = Probe::start(
                    ProbeConfig::until_stopped(
                        server.url(scenario.read_probe),
                        Method::Get,
                        options.interval,
                        options.timeout,
                    ),
                    t0,
                    None,
                );
                let sampler =
                    replica::WalSampler::start((database_url, url), scenario.large_table(), t0)?;
                Some((server, reads, sampler))
            }
            None => None,
        };
        let monitor = LockMonitor::start(database_url, &scenario.tables(), LOCK_INTERVAL, t0)?;
        let writers = match options.writers {
            0 => None,
            n => Some(load::Writers::start(
                database_url,
                (scenario, &release),
                (n, options.large_count),
                Duration::from_millis(10),
                t0,
            )?),
        };
        Ok(Instruments {
            t0,
            server,
            release,
            reads,
            writes,
            control,
            also,
            replica,
            monitor,
            writers,
        })
    }

    /// How many requests of every probe but the control have failed so far.
    fn failures_so_far(&self) -> u64 {
        let replica = self.replica.iter().map(|(_, reads, _)| reads);
        [&self.reads, &self.writes]
            .into_iter()
            .chain(self.also.iter().map(|(_, probe)| probe))
            .chain(replica)
            .map(Probe::failures_so_far)
            .sum()
    }

    /// Why the lab's own measuring cannot be trusted from now on, if it
    /// cannot: its server stopped answering the control probe.
    fn lab_failure(&self) -> Option<String> {
        match self.control.failures_so_far() {
            0 => None,
            n => Some(format!(
                "{n} of its {} checks failed, which touch no database",
                web::ALIVE
            )),
        }
    }

    fn finish(self) -> Measured {
        let end_ms = since(self.t0);
        let (writer_counts, slow_writes) =
            self.writers.map(load::Writers::finish).unwrap_or_default();
        let measured = Measured {
            end_ms,
            lock_samples: self.monitor.finish(),
            writer_counts,
            slow_writes,
            reads: self.reads.finish(),
            writes: self.writes.finish(),
            also: self
                .also
                .into_iter()
                .map(|(extra, probe)| (extra, probe.finish()))
                .collect(),
            replica: self.replica.map(|(server, reads, sampler)| {
                let measured = (reads.finish(), sampler.finish());
                drop(server);
                measured
            }),
        };
        drop(self.server);
        measured
    }
}

/// When a step ran (ms since the probes started), the tables it rewrote,
/// and why it did not complete, if it did not.
struct Window {
    start_ms: f64,
    end_ms: f64,
    rewritten: Vec<String>,
    failed: Option<String>,
}

/// Runs the planned steps, each behind a held transaction if asked, with
/// a pause after each for the queued traffic to drain (and, with a standby,
/// for it to catch up: each step's lag is its own).
fn walk(
    conn: &mut PgConnection,
    scenario: &'static Scenario,
    (database_url, replica_url): (&str, Option<&str>),
    (planned, options, (settings, budgeted)): (
        &[Planned],
        &DemoOptions,
        (RunSettings, RunSettings),
    ),
    instruments: &Instruments,
    log: &mut dyn Write,
    status: &dyn Fn(&str),
) -> Result<Vec<Window>, DemoError> {
    let t0 = instruments.t0;
    let tables = scenario.tables();
    let large = scenario.large_table();
    let mut windows = Vec::new();
    for (i, step) in planned.iter().enumerate() {
        let name = format!("step {}/{}: {}", i + 1, planned.len(), step.name);
        let during = || format!("during {}'s {name}", scenario.project());
        if crate::interrupt::requested() {
            return Err(crate::interrupt::Interrupted { during: during() }.into());
        }
        status(&name);
        let before = locks::relfilenodes(conn, &tables)?;
        let holder = match (options.hold_lock, step.kind) {
            (Some(hold), kind) if kind != StepKind::Baseline && kind != StepKind::Deploy => {
                Some(load::Holder::start(database_url, large, hold)?)
            }
            _ => None,
        };
        let start_ms = since(t0);
        let failures_before = instruments.failures_so_far();
        let mut failed = None;
        match &step.action {
            Action::Wait => {
                crate::interrupt::sleep(options.settle);
            }
            // a migration that gives up (its lock never came) ends the
            // walkthrough here: the report says so, and what came before
            Action::Migrate {
                target,
                fake,
                budgeted: within,
            } => {
                let settings = if *within { budgeted } else { settings };
                failed = runner::migrate(
                    conn,
                    scenario,
                    Some(target),
                    migrate_options(settings, *fake),
                    log,
                )
                .err()
                .map(|e| e.to_string());
            }
            Action::Naive(sql) => {
                writeln!(log, "naive, rolled back: {sql};")?;
                run_rolled_back(conn, sql).map_err(|error| interrupted_or(error.into(), during))?;
            }
            Action::Deploy(new) => {
                writeln!(log, "deploy: the server now runs release {new}")?;
                instruments.release.set(*new);
            }
        }
        let end_ms = since(t0);
        drop(holder);
        // a step cut short by Ctrl-C, or watched by a dead server, measured
        // nothing true: it is not reported, and nothing after it runs
        if crate::interrupt::requested() {
            return Err(crate::interrupt::Interrupted { during: during() }.into());
        }
        if let Some(detail) = instruments.lab_failure() {
            return Err(DemoError::LabFailure {
                step: format!("{}'s {name}", scenario.project()),
                detail,
            });
        }
        let after = locks::relfilenodes(conn, &tables)?;
        let mut rewritten: Vec<String> = before
            .iter()
            .filter(|(t, node)| after.get(*t).is_some_and(|n| n != *node))
            .map(|(t, _)| t.clone())
            .collect();
        rewritten.sort();
        let stop = failed.is_some();
        windows.push(Window {
            start_ms,
            end_ms,
            rewritten,
            failed,
        });
        if let Some(replica_url) = replica_url {
            status("waiting for the standby to replay the step");
            replica::caught_up(database_url, replica_url, REPLICA_PATIENCE)?;
        }
        // let the traffic that queued drain before the next step
        crate::interrupt::sleep(options.settle);
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

/// The report: each step's window read off the probes and the lock
/// samples, every acknowledged write found, every row accounted for.
fn report(
    conn: &mut PgConnection,
    scenario: &'static Scenario,
    options: &DemoOptions,
    postgres: String,
    (planned, windows): (&[Planned], Vec<Window>),
    measured: Measured,
) -> Result<ProjectReport, DemoError> {
    let large = scenario.large_table();
    let tables = scenario.tables();
    let interval_ms = LOCK_INTERVAL.as_secs_f64() * 1000.0;
    let next_starts: Vec<f64> = windows
        .iter()
        .skip(1)
        .map(|w| w.start_ms)
        .chain([measured.end_ms])
        .collect();
    let completed = windows.iter().all(|w| w.failed.is_none());
    let steps = planned
        .iter()
        .zip(windows)
        .zip(next_starts)
        .map(|((step, window), until_ms)| {
            let Window {
                start_ms,
                end_ms,
                rewritten,
                failed,
            } = window;
            let lock =
                locks::summarize(&measured.lock_samples, large, start_ms, end_ms, interval_ms);
            let also_locked = tables
                .iter()
                .filter(|t| **t != large)
                .filter_map(|t| {
                    OtherLock::blocking_writes(locks::summarize(
                        &measured.lock_samples,
                        t,
                        start_ms,
                        end_ms,
                        interval_ms,
                    ))
                })
                .collect();
            let step = StepReport::new(
                &step.name,
                step.kind,
                (start_ms, end_ms, until_ms),
                (lock, interval_ms),
                rewritten,
                &measured.reads,
                &measured.writes,
                measured.end_ms,
            );
            let also_probed = measured
                .also
                .iter()
                .map(|(extra, samples)| {
                    (
                        format!("{} {}", extra.verb.as_str(), extra.path),
                        report::in_flight(samples, (start_ms, until_ms), measured.end_ms),
                    )
                })
                .collect();
            let replica = measured.replica.as_ref().map(|(reads, wal)| {
                let (wal_bytes, lag_seconds, lag_bytes) = replica::over(wal, (start_ms, until_ms));
                replica::ReplicaStep {
                    wal_bytes,
                    lag_seconds,
                    lag_bytes,
                    locked_ms: replica::locked_ms(wal, (start_ms, until_ms)),
                    reads: report::in_flight(reads, (start_ms, until_ms), measured.end_ms),
                }
            });
            let slow_writes =
                report::SlowWrites::during(&measured.slow_writes, (start_ms, until_ms));
            StepReport {
                also_locked,
                also_probed,
                failed,
                replica,
                slow_writes,
                ..step
            }
        })
        .collect();
    let present = verify_writes(conn, large, &measured.writes)?;
    for (extra, samples) in &measured.also {
        if let Some(table) = extra.table {
            verify_writes(conn, table, samples)?;
        }
    }
    let (rows_in_table, probe_writes) = count_rows(
        conn,
        (scenario, completed),
        options.large_count,
        measured.writer_counts.inserted,
    )?;
    Ok(ProjectReport {
        project: scenario.project().to_owned(),
        rows: options.large_count,
        postgres,
        interval_ms: options.interval.as_secs_f64() * 1000.0,
        timeout_ms: options.timeout.as_secs_f64() * 1000.0,
        steps,
        writes_acknowledged: present,
        writers: measured.writer_counts,
        rows_in_table,
        probe_writes_in_table: probe_writes,
        late_writes: probe_writes.saturating_sub(present as i64).max(0),
        hold_lock_ms: options.hold_lock.map(|h| h.as_secs_f64() * 1000.0),
        server_connections: SERVER_CONNECTIONS,
        lock_timeout_ms: Some(options.lock.timeout.as_secs_f64() * 1000.0),
        end_ms: measured.end_ms,
        reads: measured.reads,
        writes: measured.writes,
    })
}

/// Checks that the large table holds exactly the rows written to it (seeded,
/// inserted by writers, and probe writes that landed), and that the safe
/// path's column has no NULL. Returns the row count and how many probe
/// writes landed (acknowledged or not: a write whose client timed out can
/// still commit once the lock is released).
fn count_rows(
    conn: &mut PgConnection,
    (scenario, completed): (&Scenario, bool),
    seeded: u64,
    inserted: u64,
) -> Result<(i64, i64), DemoError> {
    let large = scenario.large_table();
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = BigInt)]
        found: i64,
        #[diesel(sql_type = BigInt)]
        probes: i64,
    }
    // one statement, one snapshot: writes the stopped server had queued can
    // still land while the lab counts, and must land in both counts or none
    let Counts { found, probes } = diesel::sql_query(format!(
        "SELECT count(*) AS found, count(*) FILTER (WHERE {} LIKE 'probe write %') AS probes FROM {large}",
        scenario.name_column
    ))
    .get_result::<Counts>(conn)?;
    let expected = seeded as i64 + inserted as i64 + probes;
    if found != expected {
        return Err(DemoError::RowCount {
            table: large.to_owned(),
            found,
            expected,
        });
    }
    // a walkthrough that stopped early left the recipes' work undone
    for (_, recipe) in scenario.rust_migrations.iter().filter(|_| completed) {
        if let Some(problem) = recipe.check(conn)? {
            return Err(DemoError::Check(problem));
        }
    }
    Ok((found, probes))
}

/// Checks that every write the server acknowledged (a 201 with an id) is in
/// `table`; returns how many there are, or fails naming the missing ids.
pub fn verify_writes(
    conn: &mut PgConnection,
    table: &str,
    writes: &[Sample],
) -> Result<usize, DemoError> {
    let acknowledged: Vec<i64> = writes
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.id)
        .collect();
    #[derive(QueryableByName)]
    struct Missing {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let missing = diesel::sql_query(format!(
        "SELECT a.id FROM unnest($1) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = a.id) ORDER BY a.id"
    ))
    .bind::<Array<BigInt>, _>(&acknowledged)
    .load::<Missing>(conn)?;
    if missing.is_empty() {
        Ok(acknowledged.len())
    } else {
        let ids: Vec<String> = missing.iter().take(20).map(|m| m.id.to_string()).collect();
        Err(DemoError::LostWrites {
            table: table.to_owned(),
            acknowledged: acknowledged.len(),
            missing: missing.len(),
            ids: ids.join(", "),
        })
    }
}
