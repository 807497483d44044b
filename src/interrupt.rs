//! Ctrl-C during a migration: stop cleanly, say where, say how to resume.
//!
//! The first Ctrl-C raises a flag that the backfill checks between batches,
//! and cancels the statement the migrating session is running
//! (`pg_cancel_backend` from a second connection), so a long rewrite stops
//! now instead of at its end. What was running is rolled back; what committed
//! stays (whole batches, whole steps), and the migration is not recorded, so
//! running the same command again finishes it.

use std::sync::atomic::{AtomicBool, Ordering};

use diesel::prelude::*;
use diesel::sql_types::Integer;

static REQUESTED: AtomicBool = AtomicBool::new(false);

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

/// Installs the Ctrl-C handler for a migration running on backend `pid`.
pub fn on_ctrl_c_cancel(database_url: &str, pid: i32) {
    let url = database_url.to_owned();
    let installed = ctrlc::set_handler(move || {
        if REQUESTED.swap(true, Ordering::Relaxed) {
            return;
        }
        eprintln!("\nCtrl-C: stopping the migration (the statement running is rolled back)...");
        if let Ok(mut conn) = PgConnection::establish(&url) {
            let _ =
                diesel::sql_query(format!("SELECT pg_cancel_backend({pid})")).execute(&mut conn);
        }
    });
    if let Err(error) = installed {
        tracing::warn!(%error, "Ctrl-C will stop the process without cleaning up");
    }
}
