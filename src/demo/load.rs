//! What production adds to the demo: a session holding the table in a long
//! transaction (`--hold-lock`), and steady writers (`--writers`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

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
    inserted: Arc<AtomicU64>,
    updated: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
    threads: Vec<JoinHandle<()>>,
}

/// What the writers did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriterCounts {
    pub inserted: u64,
    pub updated: u64,
    pub failed: u64,
    /// The first failure's error, if any.
    pub first_error: Option<String>,
}

impl Writers {
    /// `count` writers on `table`, updating ids up to `max_id`, each pausing
    /// `pause` between rounds; they write as `release` of the app's code does.
    pub fn start(
        database_url: &str,
        (scenario, release): (&'static Scenario, &Release),
        count: usize,
        max_id: u64,
        pause: Duration,
    ) -> Result<Writers, DbError> {
        let table = scenario.large_table();
        let stop = Arc::new(AtomicBool::new(false));
        let (inserted, updated, failed) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
        let mut threads = Vec::new();
        for writer in 0..count {
            let mut conn = db::connect(database_url)?;
            conn.batch_execute("SET application_name = 'risky_migrations writer'")?;
            let update = format!("UPDATE {table} SET name = $2 WHERE id = $1");
            let (stop, inserted, updated, failed) = (
                stop.clone(),
                inserted.clone(),
                updated.clone(),
                failed.clone(),
            );
            let first_error = first_error.clone();
            let release = release.clone();
            let fail = move |error: diesel::result::Error| {
                failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            };
            threads.push(std::thread::spawn(move || {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let name = format!("writer {writer} row {round}");
                    // inserted as the endpoint inserts, whatever the state
                    match scenario.create_large(&mut conn, &name, release.get()) {
                        Ok(_) => {
                            inserted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => fail(error),
                    }
                    let id = (round * 7919 + writer as u64 * 104_729) % max_id.max(1) + 1;
                    let done = diesel::sql_query(&update)
                        .bind::<BigInt, _>(id as i64)
                        .bind::<Text, _>(format!("updated by writer {writer}"))
                        .execute(&mut conn);
                    match done {
                        Ok(_) => {
                            updated.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => fail(error),
                    }
                    std::thread::sleep(pause);
                }
            }));
        }
        Ok(Writers {
            stop,
            inserted,
            updated,
            failed,
            first_error,
            threads,
        })
    }

    pub fn finish(self) -> WriterCounts {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        WriterCounts {
            inserted: self.inserted.load(Ordering::Relaxed),
            updated: self.updated.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            first_error: self.first_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}
