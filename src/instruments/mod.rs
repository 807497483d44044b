//! What measures: the lab's HTTP server and its probes, SQL load, the lock
//! monitor, a hot standby's lag, a session holding the table, and the
//! timeline they share. `demo`, `bench` and `rehearse` start them the same
//! way ([`Instruments::start`]) and none of the three reaches into another.

pub mod html;
pub mod load;
pub mod locks;
pub mod probe;
pub mod replica;

/// `12 ms`, `41.2 s`: how every report says a duration.
pub fn duration(ms: f64) -> String {
    if ms < 999.5 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

use std::time::{Duration, Instant};

pub use crate::db::Databases;
use crate::db::{self, DbError};
use crate::scenarios::{Release, Scenario};
use crate::web::{self, AppState};
use locks::{LockMonitor, LockSample};
use probe::{Method, Probe, ProbeConfig, Sample};

/// Milliseconds from `t0` to now: the instruments' common timeline.
pub fn ms_since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("starting the lab's server: {0}")]
    Server(std::io::Error),
}

/// The lab's own HTTP server: a scenario's endpoints, served in-process.
#[derive(Clone)]
pub struct ServerSetup {
    pub scenario: &'static Scenario,
    /// Its database connections, and so its busy workers at most.
    pub connections: u32,
    pub workers: usize,
    /// The release of the app's code it starts with.
    pub release: Release,
}

/// Where a probe sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path on the lab's server.
    Lab(&'static str),
    /// A path on the lab's server reading from the standby.
    Standby(&'static str),
    /// Anywhere (the user's own endpoint).
    Url(String),
}

/// A probe to start.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// How reports name it, and how [`Measured::samples`] finds it.
    pub label: String,
    pub target: Target,
    pub method: Method,
    pub interval: Duration,
    pub timeout: Duration,
}

/// A hot standby to watch: its lag, the WAL written, `table`'s locks
/// replayed on it.
#[derive(Debug, Clone)]
pub struct ReplicaSetup {
    pub url: String,
    pub table: String,
}

/// Steady writers on the scenario's large table, as its release writes.
#[derive(Debug, Clone, Copy)]
pub struct WritersSetup {
    pub count: usize,
    /// The ids they update, 1 to this.
    pub max_id: u64,
    pub pause: Duration,
}

/// What to start, all optional but the database.
#[derive(Clone)]
pub struct Setup {
    pub database_url: String,
    pub server: Option<ServerSetup>,
    pub replica: Option<ReplicaSetup>,
    pub probes: Vec<ProbeSpec>,
    /// The tables the lock monitor watches, and how often (none: no monitor).
    pub watch: Vec<String>,
    pub lock_interval: Duration,
    pub writers: Option<WritersSetup>,
    pub sql_load: Option<load::SqlLoadSetup>,
}

impl Setup {
    /// Nothing but the database: add what a run needs.
    pub fn on(database_url: &str) -> Self {
        Setup {
            database_url: database_url.to_owned(),
            server: None,
            replica: None,
            probes: Vec::new(),
            watch: Vec::new(),
            lock_interval: LOCK_INTERVAL,
            writers: None,
            sql_load: None,
        }
    }
}

/// How often the lock monitor samples `pg_locks` unless told.
pub const LOCK_INTERVAL: Duration = Duration::from_millis(10);

/// How often the control probe asks the server whether it is alive.
const CONTROL_INTERVAL: Duration = Duration::from_millis(100);

/// The lab's server, and one on the standby when there is one.
struct Servers {
    primary: web::Running,
    /// Kept running until the instruments stop: the standby's readers'
    /// probes ask it.
    _standby: Option<web::Running>,
    /// Asks the server's [`web::ALIVE`], which touches no database: if it
    /// fails, the server itself is down, and no migration is to blame.
    control: Probe,
}

/// What watches the database rather than the server.
struct Watchers {
    wal: Option<replica::WalSampler>,
    monitor: Option<LockMonitor>,
    writers: Option<load::Writers>,
    sql_load: Option<load::SqlLoad>,
}

impl Watchers {
    fn start(setup: &Setup, release: &Release, t0: Instant) -> Result<Self, InstrumentError> {
        let url = setup.database_url.as_str();
        let wal = match &setup.replica {
            Some(replica) => Some(replica::WalSampler::start(
                (url, &replica.url),
                &replica.table,
                t0,
            )?),
            None => None,
        };
        let tables: Vec<&str> = setup.watch.iter().map(String::as_str).collect();
        let monitor = match tables.is_empty() {
            true => None,
            false => Some(LockMonitor::start(url, &tables, setup.lock_interval, t0)?),
        };
        let writers = match (setup.writers, &setup.server) {
            (Some(w), Some(server)) => Some(load::Writers::start(
                url,
                (server.scenario, release),
                (w.count, w.max_id),
                w.pause,
                t0,
            )?),
            _ => None,
        };
        let sql_load = match &setup.sql_load {
            Some(load) => Some(load::SqlLoad::start(url, load, t0)?),
            None => None,
        };
        Ok(Watchers {
            wal,
            monitor,
            writers,
            sql_load,
        })
    }
}

/// The instruments running, on one timeline from [`Instruments::t0`].
pub struct Instruments {
    pub t0: Instant,
    /// The release of the app's code the server and the writers run.
    pub release: Release,
    servers: Option<Servers>,
    probes: Vec<(ProbeSpec, Probe)>,
    wal: Option<replica::WalSampler>,
    monitor: Option<LockMonitor>,
    writers: Option<load::Writers>,
    sql_load: Option<load::SqlLoad>,
}

/// What the instruments saw, each on the common timeline.
#[derive(Debug, Default)]
pub struct Measured {
    pub end_ms: f64,
    pub probes: Vec<(ProbeSpec, Vec<Sample>)>,
    pub lock_samples: Vec<LockSample>,
    pub writer_counts: load::WriterCounts,
    pub slow_writes: Vec<load::SlowWrite>,
    pub wal: Option<Vec<replica::WalSample>>,
    pub sql_load: Option<load::LoadMeasured>,
}

impl Measured {
    /// The samples of the probe labelled `label` (none if there is none).
    pub fn samples(&self, label: &str) -> &[Sample] {
        self.probes
            .iter()
            .find(|(spec, _)| spec.label == label)
            .map_or(&[], |(_, samples)| samples.as_slice())
    }
}

impl Instruments {
    /// Starts everything `setup` asks for; fails before measuring anything
    /// if a part cannot start.
    pub fn start(setup: Setup) -> Result<Self, InstrumentError> {
        let release = setup
            .server
            .as_ref()
            .map_or_else(Release::default, |s| s.release.clone());
        let spawned = match &setup.server {
            Some(server) => Some(Self::serve(server, &setup, &release)?),
            None => None,
        };
        let t0 = Instant::now();
        let url = |target: &Target| match (target, &spawned) {
            (Target::Url(url), _) => Some(url.clone()),
            (Target::Lab(path), Some((primary, _))) => Some(primary.url(path)),
            (Target::Standby(path), Some((_, Some(standby)))) => Some(standby.url(path)),
            _ => None,
        };
        let probes = setup
            .probes
            .iter()
            .filter_map(|spec| {
                let to = url(&spec.target)?;
                let config =
                    ProbeConfig::until_stopped(to, spec.method, spec.interval, spec.timeout);
                Some((spec.clone(), Probe::start(config, t0, None)))
            })
            .collect();
        let servers = spawned.map(|(primary, standby)| Servers {
            control: Probe::start(
                ProbeConfig::until_stopped(
                    primary.url(web::ALIVE),
                    Method::Get,
                    CONTROL_INTERVAL,
                    Duration::from_secs(3),
                ),
                t0,
                None,
            ),
            primary,
            _standby: standby,
        });
        let watchers = Watchers::start(&setup, &release, t0)?;
        Ok(Instruments {
            t0,
            release,
            servers,
            probes,
            wal: watchers.wal,
            monitor: watchers.monitor,
            writers: watchers.writers,
            sql_load: watchers.sql_load,
        })
    }

    /// The lab's server (and, with a standby, a second one reading from
    /// it: the same code, where writes fail), before the clock starts.
    fn serve(
        server: &ServerSetup,
        setup: &Setup,
        release: &Release,
    ) -> Result<(web::Running, Option<web::Running>), InstrumentError> {
        let spawn = |url: &str, workers| {
            web::Running::spawn(
                AppState {
                    pool: db::pool(url, server.connections),
                    scenario: server.scenario,
                    release: release.clone(),
                },
                workers,
            )
            .map_err(InstrumentError::Server)
        };
        let primary = spawn(&setup.database_url, server.workers)?;
        let standby = match &setup.replica {
            Some(replica) => Some(spawn(&replica.url, 1)?),
            None => None,
        };
        Ok((primary, standby))
    }

    /// `http://127.0.0.1:<port><path>` on the lab's server, if it runs one.
    pub fn url(&self, path: &str) -> Option<String> {
        self.servers.as_ref().map(|s| s.primary.url(path))
    }

    /// Milliseconds since the instruments started.
    pub fn now_ms(&self) -> f64 {
        ms_since(self.t0)
    }

    /// How many requests and load queries have failed so far (the control
    /// probe aside).
    pub fn failures_so_far(&self) -> u64 {
        let probes: u64 = self.probes.iter().map(|(_, p)| p.failures_so_far()).sum();
        probes
            + self
                .sql_load
                .as_ref()
                .map_or(0, load::SqlLoad::failures_so_far)
    }

    /// Why the lab's own measuring cannot be trusted from now on, if it
    /// cannot: its server stopped answering the control probe.
    pub fn lab_failure(&self) -> Option<String> {
        let failed = self.servers.as_ref()?.control.failures_so_far();
        (failed > 0).then(|| {
            format!(
                "{failed} of its {} checks failed, which touch no database",
                web::ALIVE
            )
        })
    }

    /// Stops everything and returns what each saw.
    pub fn finish(self) -> Measured {
        let end_ms = self.now_ms();
        let (writer_counts, slow_writes) =
            self.writers.map(load::Writers::finish).unwrap_or_default();
        let measured = Measured {
            end_ms,
            lock_samples: self.monitor.map(LockMonitor::finish).unwrap_or_default(),
            writer_counts,
            slow_writes,
            probes: self
                .probes
                .into_iter()
                .map(|(spec, probe)| (spec, probe.finish()))
                .collect(),
            wal: self.wal.map(replica::WalSampler::finish),
            sql_load: self.sql_load.map(load::SqlLoad::finish),
        };
        drop(self.servers);
        measured
    }
}
