//! Ctrl-C during a migration: stop cleanly, say where, say how to resume;
//! during a measurement (`demo`, `bench`): stop measuring at once.
//!
//! The first Ctrl-C raises a flag that the backfill checks between batches,
//! and cancels the statement the migrating session is running
//! (`pg_cancel_backend` from a second connection), so a long rewrite stops
//! now instead of at its end. What was running is rolled back; what committed
//! stays (whole batches, whole steps), and the migration is not recorded, so
//! running the same command again finishes it. A command that measures
//! stops at the next step and reports nothing as measured after the
//! Ctrl-C ([`Interrupted`], exit status [`EXIT_STATUS`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use diesel::prelude::*;
use diesel::sql_types::Integer;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// The statement Ctrl-C cancels: the database and the backend pid running it.
static CANCEL: Mutex<Option<(String, i32)>> = Mutex::new(None);

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// The backend pid of a connection.
pub fn backend_pid(conn: &mut PgConnection) -> QueryResult<i32> {
    diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(conn)
        .map(|p| p.pid)
}

/// What the handler says when Ctrl-C comes, set by the command running.
static SAYING: Mutex<Option<&'static str>> = Mutex::new(None);

/// Installs the process's one Ctrl-C handler (a second `ctrlc` handler in
/// one process is refused, so every command goes through this one): the
/// first Ctrl-C raises [`requested`], says what the command does about it
/// ([`saying`]), and cancels the statement registered by
/// [`on_ctrl_c_cancel`], if any.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::Relaxed) {
                return;
            }
            let target = CANCEL.lock().ok().and_then(|t| t.clone());
            let saying = SAYING.lock().ok().and_then(|s| *s).or(target
                .as_ref()
                .map(|_| "stopping the migration (the statement running is rolled back)..."));
            if let Some(saying) = saying {
                eprintln!("\nCtrl-C: {saying}");
            }
            if let Some((url, pid)) = target
                && let Ok(mut conn) = PgConnection::establish(&url)
            {
                let _ = diesel::sql_query(format!("SELECT pg_cancel_backend({pid})"))
                    .execute(&mut conn);
            }
        });
        if let Err(error) = installed {
            tracing::warn!(%error, "Ctrl-C will stop the process without cleaning up");
        }
    });
}

/// Installs the handler, which will say `saying` on Ctrl-C.
pub fn saying(saying: &'static str) {
    if let Ok(mut said) = SAYING.lock() {
        *said = Some(saying);
    }
    install();
}

/// The exit status of a command stopped by Ctrl-C (128 + SIGINT), as a
/// shell reports it.
pub const EXIT_STATUS: u8 = 130;

/// A command stopped by Ctrl-C: it measured or did only part of its work,
/// and says where it stopped.
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C) {during}")]
pub struct Interrupted {
    /// `during proj01_add_not_null_constraint's step 5/9 (0004 batched backfill)`
    pub during: String,
}

/// Sleeps `duration`, or less if Ctrl-C comes: whether it came.
pub fn sleep(duration: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + duration;
    loop {
        if requested() {
            return true;
        }
        let now = std::time::Instant::now();
        if now >= until {
            return false;
        }
        std::thread::sleep((until - now).min(std::time::Duration::from_millis(20)));
    }
}

/// Ctrl-C cancels the statement that backend `pid` of `database_url` runs.
pub fn on_ctrl_c_cancel(database_url: &str, pid: i32) {
    if let Ok(mut target) = CANCEL.lock() {
        *target = Some((database_url.to_owned(), pid));
    }
    install();
}
