//! The backfill's budget on one server: the sessions it blocks, and a
//! health check it throttles on. (Replica lag: `replicas.rs`.)

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::support::{PROJ01, TestDb};

/// The number after `label` in `line`, digits and separators.
fn number_after(line: &str, label: &str) -> u64 {
    line.split(label)
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .filter(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {line:?}"))
}

/// Requests updating rows all over the table while the backfill runs: the
/// ones that land in the batch being written wait for its commit. The
/// backfill sees them (a watcher samples `pg_blocking_pids`), halves its
/// batches and gives the writers their time back, and says so; it still
/// fills every row.
#[test]
fn the_backfill_sees_the_sessions_its_locks_block_and_shrinks_its_batches() {
    let db = TestDb::at_0003_seeded(PROJ01, "200000");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, url) = (stop.clone(), db.url.clone());
        std::thread::spawn(move || {
            let mut conn = PgConnection::establish(&url).unwrap();
            let mut updates = 0i64;
            while !stop.load(Ordering::Relaxed) {
                // one row by its key, all over the table in turn
                diesel::sql_query("UPDATE large_user SET name = name WHERE id = $1")
                    .bind::<BigInt, _>(1 + updates * 7919 % 200_000)
                    .execute(&mut conn)
                    .unwrap();
                updates += 1;
            }
            updates
        })
    };
    let out = db.manage_ok(&[
        "migrate",
        "0004",
        "--batch-size",
        "20000",
        "--max-blocked-sessions",
        "0",
    ]);
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);

    let paused = out
        .lines()
        .find(|l| l.contains("waited on the last batch's locks"))
        .unwrap_or_else(|| panic!("no pause for a blocked session: {out}"));
    assert!(paused.contains("over --max-blocked-sessions 0"), "{paused}");
    // the batches after it are smaller than the ones asked for
    let batches: Vec<u64> = out
        .lines()
        .filter(|l| l.contains("backfilled:"))
        .map(|l| number_after(l, "backfilled: "))
        .collect();
    assert!(batches.iter().any(|&rows| rows < 20_000), "{out}");
    // a summary per table walked: the large table's comes last
    let summary = out
        .lines()
        .rfind(|l| l.contains("Sessions blocked by the backfill: peak"))
        .unwrap_or_else(|| panic!("no summary: {out}"));
    assert!(number_after(summary, "peak ") >= 1, "{summary}");
    assert!(out.contains("Budget kept: "), "{out}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_user WHERE role IS NULL"),
        0
    );
}

/// A health URL that does not answer holds the backfill before its first
/// batch, saying why; once a server answers there (the lab's own,
/// `manage runserver`), the backfill goes on and finishes.
#[test]
fn the_backfill_waits_for_its_health_check_to_answer() {
    let db = TestDb::at_0003_seeded(PROJ01, "20000");
    let port = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().port()
    };
    let health = format!("http://127.0.0.1:{port}/list_large/");
    let args = [
        "migrate",
        "0004",
        "--batch-size",
        "5000",
        "--throttle-url",
        &health,
        "--max-latency",
        "2",
    ];
    let (mut migrator, mut lines) = db.spawn(&args);
    let pausing = lines
        .find(|l| l.contains("pausing: the health check"))
        .expect("the backfill pauses on its health check");
    assert!(
        pausing.contains(&health) && pausing.contains("failed"),
        "{pausing}"
    );
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = db.conn();
    let filled = diesel::sql_query("SELECT count(role) AS n FROM large_user")
        .get_result::<N>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(filled, 0, "no batch before the check passes");

    let port = port.to_string();
    let serve = ["runserver", port.as_str()];
    let mut server = db
        .manage_command(&serve)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rest: Vec<String> = lines.collect();
    let status = migrator.wait().unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    let text = rest.join("\n");
    assert!(status.success(), "{text}");
    assert!(
        text.contains("resumed after") && text.contains("the health check answered in"),
        "{text}"
    );
    // a summary per table walked: the first table's saw the failures
    let summaries: Vec<&String> = rest
        .iter()
        .filter(|l| l.contains("] Health check http"))
        .collect();
    assert!(
        summaries
            .iter()
            .all(|l| l.contains("with --max-latency 2.000s")),
        "{summaries:#?}"
    );
    let failed: u64 = summaries.iter().map(|l| number_after(l, "s, ")).sum();
    assert!(failed >= 1, "failed checks counted: {summaries:#?}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_user WHERE role IS NULL"),
        0
    );
}
