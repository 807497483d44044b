//! Ctrl-C during a migration: stop cleanly, say where, say how to resume.
//!
//! The first Ctrl-C raises a flag that the backfill checks between batches,
//! and cancels the statement the migrating session is running
//! (`pg_cancel_backend` from a second connection), so a long rewrite stops
//! now instead of at its end. What was running is rolled back; what committed
//! stays (whole batches, whole steps), and the migration is not recorded, so
//! running the same command again finishes it.

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

/// Installs the process's one Ctrl-C handler (a second `ctrlc` handler in
/// one process is refused, so every command goes through this one): the
/// first Ctrl-C raises [`requested`], and cancels the statement registered
/// by [`on_ctrl_c_cancel`], if any.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::Relaxed) {
                return;
            }
            let target = CANCEL.lock().ok().and_then(|t| t.clone());
            if let Some((url, pid)) = target {
                eprintln!(
                    "\nCtrl-C: stopping the migration (the statement running is rolled back)..."
                );
                if let Ok(mut conn) = PgConnection::establish(&url) {
                    let _ = diesel::sql_query(format!("SELECT pg_cancel_backend({pid})"))
                        .execute(&mut conn);
                }
            }
        });
        if let Err(error) = installed {
            tracing::warn!(%error, "Ctrl-C will stop the process without cleaning up");
        }
    });
}

/// Ctrl-C cancels the statement that backend `pid` of `database_url` runs.
pub fn on_ctrl_c_cancel(database_url: &str, pid: i32) {
    if let Ok(mut target) = CANCEL.lock() {
        *target = Some((database_url.to_owned(), pid));
    }
    install();
}
