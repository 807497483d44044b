//! The Rust backfill (0004): interrupted and resumed, and with writes going on.

use std::process::Child;

use serde_json::json;

use crate::support::{Case, PROJ01, PROJ04, TestDb, TestServer};

/// Starts `manage migrate 0004` slowly enough to act while it runs, within
/// a budget (its watcher thread must not change what a kill leaves).
fn slow_backfill(db: &TestDb) -> (Child, impl Iterator<Item = String>) {
    db.spawn(&[
        "migrate",
        "0004",
        "--batch-size",
        "500",
        "--pause",
        "0.05",
        "--max-blocked-sessions",
        "0",
    ])
}

fn killed_and_resumed(case: Case) {
    let db = TestDb::at_0003_seeded(case, "10000");
    let (mut child, mut lines) = slow_backfill(&db);
    lines
        .find(|l| l.contains("Batch 6 backfilled"))
        .expect("the backfill reached batch 6");
    child.kill().unwrap();
    child.wait().unwrap();

    let filled = db.scalar(&format!(
        "SELECT count({}) FROM {}",
        case.new_column(),
        case.large()
    ));
    assert!(
        (6 * 500..10_000).contains(&filled),
        "whole batches only, got {filled}"
    );
    assert_eq!(filled % 500, 0, "a batch is all or nothing");
    assert_eq!(
        db.scalar("SELECT count(*) FROM __diesel_schema_migrations WHERE version = '0004'"),
        0
    );
    let shown = db.manage_ok(&["showmigrations"]);
    assert!(shown.contains(" [ ] 0004_backfill"), "{shown}");

    let out = db.manage_ok(&["migrate", "0004", "--batch-size", "2000"]);
    assert!(out.contains("Backfill complete! Total: "), "{out}");
    let (table, column, value) = (case.large(), case.new_column(), case.new_value());
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {column} IS NULL"
        )),
        0
    );
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {table}")), 10_000);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {column} IS DISTINCT FROM {value}"
        )),
        0
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM __diesel_schema_migrations WHERE version = '0004'"),
        1
    );
    db.manage_ok(&["migrate", "0005"]);
}

#[test]
fn proj01_a_backfill_killed_between_batches_resumes_and_is_recorded_only_at_the_end() {
    killed_and_resumed(PROJ01);
}

#[test]
fn proj04_a_backfill_killed_between_batches_resumes_and_is_recorded_only_at_the_end() {
    killed_and_resumed(PROJ04);
}

fn live_writes(case: Case) {
    let db = TestDb::at_0003_seeded(case, "8000");
    let server = TestServer::start(case.project, &db.url);
    let (mut child, mut lines) = slow_backfill(&db);
    lines
        .find(|l| l.contains("Batch 3 backfilled"))
        .expect("the backfill started");
    let mut ids = Vec::new();
    for i in 0..25 {
        let (status, body) = server.post("/large/", json!({"name": format!("live write {i}")}));
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_i64().unwrap());
    }
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("OK")), "{rest:?}");

    let (table, column) = (case.large(), case.new_column());
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count({column}) FROM {table} WHERE id IN ({list})"
        )),
        25
    );
    db.manage_ok(&["migrate", "0005"]);
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {table}")), 8025);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {column} IS NULL"
        )),
        0
    );
    let (status, body) = server.post("/large/", json!({"name": "after 0005"}));
    assert_eq!(status, 201, "{body}");
}

#[test]
fn proj01_rows_written_while_the_backfill_runs_get_the_new_column_and_0005_succeeds() {
    live_writes(PROJ01);
}

#[test]
fn proj04_rows_written_while_the_backfill_runs_get_the_new_column_and_0005_succeeds() {
    live_writes(PROJ04);
}

/// With `--batch-time`, batches far quicker than the target double each time
/// (never more), and every row still gets its value.
#[test]
fn batches_aiming_at_a_time_grow_toward_it() {
    let case = PROJ04;
    let db = TestDb::at_0003_seeded(case, "20000");
    let out = db.manage_ok(&[
        "migrate",
        "0004",
        "--batch-size",
        "1000",
        "--batch-time",
        "1",
    ]);
    assert!(
        out.contains("in batches of about 1.00s (the first 1,000 rows)"),
        "{out}"
    );
    // the large table's batches: "Batch N backfilled: 1,000 rows (0.0s)"
    let large = out
        .split("Backfilling LargeRecord")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"));
    let sizes: Vec<u64> = large
        .lines()
        .filter_map(|l| l.split(" backfilled: ").nth(1))
        .map(|rest| {
            rest.split(' ')
                .next()
                .unwrap()
                .replace(',', "")
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(sizes, [1_000, 2_000, 4_000, 8_000, 5_000], "{out}");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM {} WHERE {} IS NULL",
            case.large(),
            case.new_column()
        )),
        0
    );
}

/// Vacuuming as it goes: the backfill says when it vacuums, and the later
/// batches reuse the space the earlier ones freed, so the table grows less
/// than without (where every row gets a second, new version).
#[test]
fn vacuuming_as_it_goes_keeps_the_table_from_growing_by_a_copy() {
    let size = |vacuum: &[&str]| {
        let db = TestDb::at_0003_seeded(PROJ01, "20000");
        // no autovacuum to free the space, or to make ours skip the table
        diesel::connection::SimpleConnection::batch_execute(
            &mut db.conn(),
            "ALTER TABLE large_user SET (autovacuum_enabled = false)",
        )
        .unwrap();
        let args: Vec<&str> = ["migrate", "0004", "--batch-size", "2000"]
            .into_iter()
            .chain(vacuum.iter().copied())
            .collect();
        let out = db.manage_ok(&args);
        assert_eq!(
            db.scalar("SELECT count(*) FROM large_user WHERE role IS NULL"),
            0
        );
        (db.scalar("SELECT pg_relation_size('large_user')"), out)
    };
    let (plain, plain_out) = size(&[]);
    let (vacuumed, vacuumed_out) = size(&["--vacuum-every", "4000"]);
    assert!(!plain_out.contains("Vacuumed"), "{plain_out}");
    assert_eq!(
        vacuumed_out.matches("Vacuumed LargeUser").count(),
        5,
        "after every 4,000 rows of 20,000: {vacuumed_out}"
    );
    assert!(
        (vacuumed as f64) < 0.8 * plain as f64,
        "with vacuum {vacuumed} bytes, without {plain} bytes"
    );
}
