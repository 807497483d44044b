//! The endpoints over real HTTP at every migration state, both ways.

use serde_json::json;

use crate::support::{TestDb, TestServer};

/// Both lists answer the seed's JSON, and a write is acknowledged with its id.
fn check_state(server: &TestServer, db: &TestDb, state: &str) {
    let (status, body) = server.get("/list_large/");
    assert_eq!(status, 200, "list_large at {state}: {body}");
    assert_eq!(body["count"], 10, "at {state}");
    assert_eq!(
        body["records"][0],
        json!({"id": 1, "name": "LargeRecord_1", "created_at": "2024-01-01 10:00:00"}),
        "at {state}"
    );
    assert_eq!(
        body["records"][9]["created_at"], "2024-01-10 10:00:00",
        "at {state}"
    );
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        ["records", "count"],
        "the seed's key order at {state}"
    );

    let (status, body) = server.get("/list_small/");
    assert_eq!(status, 200, "list_small at {state}: {body}");
    assert_eq!(body["records"][2]["name"], "SmallRecord_3");

    let (status, body) = server.post("/large/", json!({"name": format!("written at {state}")}));
    assert_eq!(status, 201, "POST /large/ at {state}: {body}");
    let id = body["id"].as_i64().unwrap();
    assert_eq!(
        db.text(&format!("SELECT name FROM large_record WHERE id = {id}")),
        format!("written at {state}")
    );
}

fn migrate(db: &TestDb, state: &str, fake: bool) {
    let mut args = vec!["migrate", state];
    if fake {
        args.push("--fake");
    }
    db.manage_ok(&args);
}

fn walk_states(fake_0002: bool) {
    let db = TestDb::new();
    let server = TestServer::start(&db.url);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "300"]);
    let forward = ["0001", "0002", "0003", "0004", "0005"];
    for state in forward {
        let fake = fake_0002 && state == "0002";
        migrate(&db, state, fake);
        check_state(&server, &db, &format!("{state} going forward"));
    }
    for state in forward.iter().rev().skip(1) {
        let fake = fake_0002 && *state == "0001";
        migrate(&db, state, fake);
        check_state(&server, &db, &format!("{state} going back"));
    }
}

#[test]
fn the_endpoints_answer_at_every_state_both_ways() {
    walk_states(false);
}

#[test]
fn the_endpoints_answer_at_every_state_with_0002_faked() {
    walk_states(true);
}

#[test]
fn a_missing_table_is_a_json_503() {
    let db = TestDb::new();
    let server = TestServer::start(&db.url);
    let (status, body) = server.get("/list_large/");
    assert_eq!(status, 503);
    assert!(
        body["error"].as_str().unwrap().contains("not migrated"),
        "{body}"
    );
    let (status, _) = server.post("/large/", json!({"name": "x"}));
    assert_eq!(status, 503);
}

#[test]
fn an_unreachable_database_is_a_json_503_without_secrets() {
    let port = risky_migrations::localdb::free_port().unwrap();
    let server = TestServer::start(&format!(
        "postgres://postgres:s3cret@127.0.0.1:{port}/nowhere"
    ));
    let (status, body) = server.get("/list_large/");
    assert_eq!(status, 503);
    assert_eq!(body, json!({"error": "the database is unavailable"}));
}

#[test]
fn bad_writes_are_a_json_400() {
    let db = TestDb::new();
    let server = TestServer::start(&db.url);
    let (status, body) = server.post("/large/", json!({"nom": "x"}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.post("/large/", json!({"name": "x".repeat(101)}));
    assert_eq!(status, 400, "{body}");
}
