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
pub mod plan;
pub mod report;
pub mod tally;
pub mod walk;

use std::io::Write;
use std::time::Duration;

use diesel::prelude::*;

use crate::budget::Limits;
use crate::db::{self, DbError};
use crate::instruments::probe::Method;
use crate::instruments::{
    Databases, InstrumentError, Instruments, ProbeSpec, ReplicaSetup, ServerSetup, Setup, Target,
    WritersSetup, replica,
};
use crate::migrations::runner::{self, MigrateError, MigrateOptions};
use crate::recipes::RunSettings;
use crate::scenarios::Scenario;
use crate::seed::{self, SeedError};
use report::ProjectReport;

pub use tally::verify_writes;

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
    /// How long an index's scans must stand still before it is dropped.
    pub index_watch: Option<Duration>,
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
    #[error(transparent)]
    Instruments(#[from] InstrumentError),
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

/// The probes' labels on the instruments' timeline.
pub mod labels {
    use crate::scenarios::endpoints::ExtraProbe;

    pub const READS: &str = "reads";
    pub const WRITES: &str = "writes";
    pub const STANDBY_READS: &str = "standby reads";

    /// A scenario's other probe: `POST /customer/`.
    pub fn also(extra: &ExtraProbe) -> String {
        format!("{} {}", extra.verb.as_str(), extra.path)
    }
}

/// How long the demo waits for a standby to have the fresh database and
/// to catch up with the seeding before the baseline.
const REPLICA_PATIENCE: Duration = Duration::from_secs(300);

/// The demo server's database connections, and so its workers at most.
const SERVER_CONNECTIONS: u32 = 16;

/// The whole walkthrough for one scenario, on the (fresh) database of
/// `databases`. Migration output goes to `log`; `status` hears what it is
/// doing at every moment.
pub fn run_project(
    scenario: &'static Scenario,
    databases: Databases<'_>,
    options: DemoOptions,
    log: &mut dyn Write,
    status: &dyn Fn(&str),
) -> Result<ProjectReport, DemoError> {
    let mut conn = db::connect(databases.primary)?;
    db::mark_migrator(&mut conn)?;
    // Ctrl-C cancels what the walkthrough's session runs (a seed, a
    // rewrite), so the demo stops now, not at the end of the statement
    crate::interrupt::on_ctrl_c_cancel(
        databases.primary,
        crate::interrupt::backend_pid(&mut conn)?,
    );
    let settings = RunSettings {
        batch_size: options.batch_size,
        batch_time: options.batch_time,
        pause: Duration::ZERO,
        progress: false,
        lock: options.lock,
        vacuum_every: options.vacuum_every,
        budget: Default::default(),
        index_watch: options.index_watch,
    };
    prepare(&mut conn, scenario, &options, settings, log, status)
        .map_err(|error| interrupted_or(error, || format!("{}'s set-up", scenario.project())))?;
    let postgres = db::server_version(&mut conn)?;
    if let Some(replica_url) = databases.replica {
        status("waiting for the standby to replay the seeding");
        replica::connect_when_there(replica_url, REPLICA_PATIENCE)?;
        replica::caught_up(databases.primary, replica_url, REPLICA_PATIENCE)?;
    }
    status("starting the server, the probes and the lock monitor");
    let instruments = Instruments::start(setup(scenario, databases, &options))?;
    let planned = plan::plan(scenario, options.budget);
    let own_health = instruments.url(scenario.read_probe).unwrap_or_default();
    let walk = walk::Walk {
        scenario,
        databases,
        planned: &planned,
        options: &options,
        settings,
        budgeted: RunSettings {
            budget: options
                .budget
                .map(|budget| budget.on(databases, &own_health))
                .unwrap_or_default(),
            ..settings
        },
    };
    let windows = walk::walk(&mut conn, &walk, &instruments, log, status)?;
    if crate::interrupt::requested() {
        return Err(crate::interrupt::Interrupted {
            during: format!("at the end of {}'s walkthrough", scenario.project()),
        }
        .into());
    }
    status("stopping the probes");
    let measured = instruments.finish();
    status("checking every acknowledged write");
    let run = tally::Run {
        scenario,
        options: &options,
        postgres,
        planned: &planned,
    };
    tally::report(&mut conn, &run, windows, measured)
}

/// What watches the walkthrough: the server (and one on the standby), the
/// read and write probes and the scenario's others, the lock monitor, and
/// the steady writers.
fn setup(scenario: &'static Scenario, databases: Databases<'_>, options: &DemoOptions) -> Setup {
    let probe = |label: String, target, method, interval| ProbeSpec {
        label,
        target,
        method,
        interval,
        timeout: options.timeout,
    };
    let mut probes = vec![
        probe(
            labels::READS.to_owned(),
            Target::Lab(scenario.read_probe),
            Method::Get,
            options.interval,
        ),
        probe(
            labels::WRITES.to_owned(),
            Target::Lab(scenario.write_probe),
            Method::Post,
            options.interval,
        ),
    ];
    probes.extend(scenario.also_probe.iter().map(|extra| {
        let method = match extra.verb {
            crate::scenarios::endpoints::Verb::Get => Method::Get,
            crate::scenarios::endpoints::Verb::Post => Method::Post,
        };
        probe(
            labels::also(extra),
            Target::Lab(extra.path),
            method,
            options.interval * extra.slower.max(1),
        )
    }));
    if databases.replica.is_some() {
        probes.push(probe(
            labels::STANDBY_READS.to_owned(),
            Target::Standby(scenario.read_probe),
            Method::Get,
            options.interval,
        ));
    }
    Setup {
        server: Some(ServerSetup {
            scenario,
            connections: SERVER_CONNECTIONS,
            workers: 2,
            release: crate::scenarios::Release::default(),
        }),
        replica: databases.replica.map(|url| ReplicaSetup {
            url: url.to_owned(),
            table: scenario.large_table().to_owned(),
        }),
        probes,
        watch: scenario.tables().iter().map(|t| (*t).to_owned()).collect(),
        writers: (options.writers > 0).then_some(WritersSetup {
            count: options.writers,
            max_id: options.large_count,
            pause: Duration::from_millis(10),
        }),
        ..Setup::on(databases.primary)
    }
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
    let migrate = MigrateOptions {
        fake: false,
        plan: false,
        settings,
    };
    runner::migrate(conn, scenario, Some(scenario.start), migrate, log)?;
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
