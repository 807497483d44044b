//! The Rust backfill (0004): interrupted and resumed, and with writes going on.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use serde_json::json;

use crate::support::{TestDb, TestServer};

/// Starts `manage migrate 0004` slowly enough to act while it runs.
fn slow_backfill(db: &TestDb) -> (Child, impl Iterator<Item = String>) {
    let mut child = db
        .manage_command(&["migrate", "0004", "--batch-size", "500", "--pause", "0.05"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    (child, lines)
}

fn prepared(rows: &str) -> TestDb {
    let db = TestDb::new();
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", rows]);
    db.manage_ok(&["migrate", "0002", "--fake"]);
    db.manage_ok(&["migrate", "0003"]);
    db
}

#[test]
fn a_backfill_killed_between_batches_resumes_and_is_recorded_only_at_the_end() {
    let db = prepared("10000");
    let (mut child, mut lines) = slow_backfill(&db);
    lines
        .find(|l| l.contains("Batch 6 backfilled"))
        .expect("the backfill reached batch 6");
    child.kill().unwrap();
    child.wait().unwrap();

    let filled = db.scalar("SELECT count(created_at_new) FROM large_record");
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
    assert!(
        shown.contains(" [ ] 0004_backfill_created_at_new"),
        "{shown}"
    );

    let out = db.manage_ok(&["migrate", "0004", "--batch-size", "2000"]);
    assert!(out.contains("Backfill complete! Total: "), "{out}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_record WHERE created_at_new IS NULL"),
        0
    );
    assert_eq!(db.scalar("SELECT count(*) FROM large_record"), 10_000);
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM large_record WHERE created_at_new <> created_at::timestamptz"
        ),
        0
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM __diesel_schema_migrations WHERE version = '0004'"),
        1
    );
    db.manage_ok(&["migrate", "0005"]);
}

#[test]
fn rows_written_while_the_backfill_runs_get_the_new_column_and_0005_succeeds() {
    let db = prepared("8000");
    let server = TestServer::start(&db.url);
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

    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(created_at_new) FROM large_record WHERE id IN ({list})"
        )),
        25
    );
    db.manage_ok(&["migrate", "0005"]);
    assert_eq!(db.scalar("SELECT count(*) FROM large_record"), 8025);
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_record WHERE created_at_new IS NULL"),
        0
    );
    let (status, body) = server.post("/large/", json!({"name": "after 0005"}));
    assert_eq!(status, 201, "{body}");
}
