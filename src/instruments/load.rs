//! Load and conditions: what production adds to a run. A session holding
//! the table in a long transaction (`--hold-lock`), steady writers as a
//! scenario's release writes (`demo --writers`), and SQL clients running
//! given queries in a loop (`rehearse --load`), each query timed like a
//! probe's request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::{self, DbError};
use crate::scenarios::{Release, Scenario};

/// A transaction that read the large table and stays open: it holds ACCESS
/// SHARE, as a long report or an idle-in-transaction session would.
pub struct Holder {
    release: mpsc::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Holder {
    /// Starts holding, and returns once the lock is held; it lets go after
    /// `hold`, or when released.
    pub fn start(database_url: &str, table: &str, hold: Duration) -> Result<Holder, DbError> {
        Holder::run(
            database_url,
            &format!("SELECT 1 FROM {table} LIMIT 1"),
            hold,
        )
    }

    /// Runs `sql` in a transaction kept open for `hold` (or until released):
    /// whatever locks it took stay held.
    pub fn run(database_url: &str, sql: &str, hold: Duration) -> Result<Holder, DbError> {
        let mut conn = db::connect(database_url)?;
        conn.batch_execute("SET application_name = 'risky_migrations holder'")?;
        conn.batch_execute(&format!("BEGIN; {sql}"))?;
        let (release, released) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = released.recv_timeout(hold);
            let _ = conn.batch_execute("COMMIT");
        });
        Ok(Holder {
            release,
            thread: Some(thread),
        })
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Steady writers: each inserts a row and updates an existing one, in a loop.
pub struct Writers {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    threads: Vec<JoinHandle<()>>,
}

/// What the writers did so far, shared by their threads.
#[derive(Default)]
struct Tally {
    inserted: AtomicU64,
    updated: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    slow: std::sync::Mutex<Vec<SlowWrite>>,
}

impl Tally {
    fn fail(&self, error: diesel::result::Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert_with(|| error.to_string());
        }
    }

    /// Notes a write that started at `started` if it took long enough to
    /// have waited.
    fn timed(&self, started: Instant, t0: Instant) {
        let took = started.elapsed();
        if took >= SLOW_WRITE
            && let Ok(mut slow) = self.slow.lock()
        {
            slow.push(SlowWrite {
                at_ms: (started - t0).as_secs_f64() * 1000.0,
                took_ms: took.as_secs_f64() * 1000.0,
            });
        }
    }
}

/// A writer's insert or update that took [`SLOW_WRITE`] or longer: it
/// waited, most often for a lock: the table's, or a row another transaction
/// (a backfill's batch) held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowWrite {
    /// When it started, in ms since the probes started.
    pub at_ms: f64,
    pub took_ms: f64,
}

/// An insert, or an update of one row by its key, takes well under a
/// millisecond here; one that takes this long waited for something.
pub const SLOW_WRITE: Duration = Duration::from_millis(20);

/// What the writers did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriterCounts {
    pub inserted: u64,
    pub updated: u64,
    pub failed: u64,
    /// The first failure's error, if any.
    pub first_error: Option<String>,
}

/// One writer: who it is, what it writes to, and how.
struct Writer {
    number: usize,
    scenario: &'static Scenario,
    release: Release,
    max_id: u64,
    pause: Duration,
    t0: Instant,
}

impl Writer {
    /// Inserts as the endpoint inserts (whatever the state), then updates
    /// a row by its key, until stopped.
    fn run(&self, conn: &mut PgConnection, stop: &AtomicBool, tally: &Tally) {
        let update = format!(
            "UPDATE {} SET name = $2 WHERE id = $1",
            self.scenario.large_table()
        );
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            let name = format!("writer {} row {round}", self.number);
            let started = Instant::now();
            let done = self.scenario.create_large(conn, &name, self.release.get());
            tally.timed(started, self.t0);
            match done {
                Ok(_) => tally.inserted.fetch_add(1, Ordering::Relaxed),
                Err(error) => {
                    tally.fail(error);
                    0
                }
            };
            let id = (round * 7919 + self.number as u64 * 104_729) % self.max_id.max(1) + 1;
            let started = Instant::now();
            let done = diesel::sql_query(&update)
                .bind::<BigInt, _>(id as i64)
                .bind::<Text, _>(format!("updated by writer {}", self.number))
                .execute(conn);
            tally.timed(started, self.t0);
            match done {
                Ok(_) => tally.updated.fetch_add(1, Ordering::Relaxed),
                Err(error) => {
                    tally.fail(error);
                    0
                }
            };
            std::thread::sleep(self.pause);
        }
    }
}

impl Writers {
    /// `count` writers on `table`, updating ids up to `max_id`, each pausing
    /// `pause` between rounds; they write as `release` of the app's code does.
    pub fn start(
        database_url: &str,
        (scenario, release): (&'static Scenario, &Release),
        (count, max_id): (usize, u64),
        pause: Duration,
        t0: Instant,
    ) -> Result<Writers, DbError> {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let mut threads = Vec::new();
        for number in 0..count {
            let mut conn = db::connect(database_url)?;
            conn.batch_execute("SET application_name = 'risky_migrations writer'")?;
            let writer = Writer {
                number,
                scenario,
                release: release.clone(),
                max_id,
                pause,
                t0,
            };
            let (stop, tally) = (stop.clone(), tally.clone());
            threads.push(std::thread::spawn(move || {
                writer.run(&mut conn, &stop, &tally)
            }));
        }
        Ok(Writers {
            stop,
            tally,
            threads,
        })
    }

    /// What they did, and their writes that waited.
    pub fn finish(self) -> (WriterCounts, Vec<SlowWrite>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        let tally = &self.tally;
        let counts = WriterCounts {
            inserted: tally.inserted.load(Ordering::Relaxed),
            updated: tally.updated.load(Ordering::Relaxed),
            failed: tally.failed.load(Ordering::Relaxed),
            first_error: tally.first_error.lock().ok().and_then(|e| e.clone()),
        };
        let slow = tally.slow.lock().map(|s| s.clone()).unwrap_or_default();
        (counts, slow)
    }
}

/// A query the SQL load runs: at most one parameter, `$1`, bound as text
/// (the SQL casts it) to one of `values` in turn.
#[derive(Debug, Clone)]
pub struct LoadQuery {
    /// How reports name it: `pk read users`, `insert orders`.
    pub label: String,
    pub sql: String,
    pub values: Vec<String>,
}

/// SQL clients, each running the queries in turn.
#[derive(Debug, Clone)]
pub struct SqlLoadSetup {
    pub clients: usize,
    pub queries: Vec<LoadQuery>,
    /// A client's pause between two queries.
    pub pause: Duration,
    /// A query that takes longer fails (`statement_timeout`), as a request
    /// a client gave up on.
    pub timeout: Duration,
}

/// The SQL load, running.
pub struct SqlLoad {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Vec<(usize, crate::instruments::probe::Sample)>>>,
    labels: Vec<String>,
}

/// What the SQL load saw: per query, every run, in the order sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadMeasured {
    pub queries: Vec<(String, Vec<crate::instruments::probe::Sample>)>,
}

impl LoadMeasured {
    /// Every run of every query, in the order sent.
    pub fn all(&self) -> Vec<crate::instruments::probe::Sample> {
        let mut all: Vec<_> = self
            .queries
            .iter()
            .flat_map(|(_, s)| s.iter().cloned())
            .collect();
        all.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
        all
    }
}

impl SqlLoad {
    /// Connects every client (failing now if one cannot) and starts them.
    pub fn start(
        database_url: &str,
        setup: &SqlLoadSetup,
        t0: Instant,
    ) -> Result<SqlLoad, DbError> {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let queries = Arc::new(setup.queries.clone());
        let mut threads = Vec::new();
        for client in 0..setup.clients {
            let mut conn = db::connect(database_url)?;
            conn.batch_execute(&format!(
                "SET application_name = 'risky_migrations load'; SET statement_timeout = {}",
                setup.timeout.as_millis().max(1)
            ))?;
            let (stop, failed, queries) = (stop.clone(), failed.clone(), queries.clone());
            let pause = setup.pause;
            threads.push(std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut round = client as u64;
                while !stop.load(Ordering::Relaxed) && !queries.is_empty() {
                    round += 1;
                    let which = (round as usize) % queries.len();
                    let sample = run_query(&mut conn, &queries[which], round, t0);
                    if !sample.ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    samples.push((which, sample));
                    std::thread::sleep(pause);
                }
                samples
            }));
        }
        Ok(SqlLoad {
            stop,
            failed,
            threads,
            labels: setup.queries.iter().map(|q| q.label.clone()).collect(),
        })
    }

    pub fn failures_so_far(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Stops the clients (each finishes the query it runs) and returns what
    /// they saw.
    pub fn finish(mut self) -> LoadMeasured {
        self.stop.store(true, Ordering::Relaxed);
        let mut queries: Vec<(String, Vec<_>)> = self
            .labels
            .iter()
            .map(|l| (l.clone(), Vec::new()))
            .collect();
        for thread in std::mem::take(&mut self.threads) {
            for (which, sample) in thread.join().unwrap_or_default() {
                if let Some((_, samples)) = queries.get_mut(which) {
                    samples.push(sample);
                }
            }
        }
        for (_, samples) in &mut queries {
            samples.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
        }
        LoadMeasured { queries }
    }
}

impl Drop for SqlLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs one query with the next of its values, timed.
pub fn run_query(
    conn: &mut PgConnection,
    query: &LoadQuery,
    round: u64,
    t0: Instant,
) -> crate::instruments::probe::Sample {
    let sent = Instant::now();
    let value =
        (!query.values.is_empty()).then(|| &query.values[(round as usize) % query.values.len()]);
    let done = match value {
        Some(value) => diesel::sql_query(&query.sql)
            .bind::<Text, _>(value)
            .execute(conn),
        None => diesel::sql_query(&query.sql).execute(conn),
    };
    let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
    crate::instruments::probe::Sample {
        number: round,
        sent_ms: sent.duration_since(t0).as_secs_f64() * 1000.0,
        latency_ms,
        queue_ms: None,
        status: None,
        error: done
            .as_ref()
            .err()
            .map(|e| crate::instruments::probe::NoAnswer::Other(crate::pg_error::describe(e))),
        id: None,
        ok: done.is_ok(),
    }
}
