//! The endpoints over real HTTP at every migration state, both ways.

use serde_json::json;

use crate::support::{CASES, Case, Lang, PROJ01, PROJ04, TestDb, TestServer};

/// Both lists answer the seed's JSON, and a write is acknowledged with its id.
fn check_state(server: &TestServer, db: &TestDb, state: &str) {
    let case = db.case;
    let (status, body) = server.get(case.scenario().read_probe);
    assert_eq!(status, 200, "list_large at {state}: {body}");
    assert_eq!(body["count"], 10, "at {state}");
    assert_eq!(body[case.key][0], case.first_large(), "at {state}");
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, [case.key, "count"], "the seed's key order at {state}");

    let (status, body) = server.get("/list_small/");
    assert_eq!(status, 200, "list_small at {state}: {body}");
    assert_eq!(body[case.key][2], case.third_small(), "at {state}");

    let (status, body) = server.post("/large/", json!({"name": format!("written at {state}")}));
    assert_eq!(status, 201, "POST /large/ at {state}: {body}");
    let id = body["id"].as_i64().unwrap();
    assert_eq!(
        db.text(&format!(
            "SELECT {} FROM {} WHERE id = {id}",
            case.written,
            case.large()
        )),
        format!("written at {state}")
    );
}

/// Seeded at the scenario's start, every state forward and back; with
/// `fake_risky`, the risky step is recorded with `--fake` both ways.
fn walk_states(case: Case, fake_risky: bool) {
    let scenario = case.scenario();
    let db = TestDb::new(case);
    let server = TestServer::start(case.project, &db.url);
    let migrate = |state: &str, fake: bool| {
        let mut args = vec!["migrate", state];
        if fake {
            args.push("--fake");
        }
        db.manage_ok(&args);
    };
    migrate(scenario.start, false);
    db.manage_ok(&["seed_large_table", "--large-count", "300"]);
    let forward: Vec<&str> = scenario
        .migrations()
        .iter()
        .map(|m| m.version)
        .skip_while(|v| *v != scenario.start)
        .collect();
    // the release that serves each state (where the safe path deploys one)
    let serve = |state: &str| server.release.set(scenario.release_for(state, !fake_risky));
    for state in &forward {
        migrate(state, fake_risky && *state == scenario.risky);
        serve(state);
        check_state(&server, &db, &format!("{state} going forward"));
    }
    for pair in forward.windows(2).rev() {
        let (state, undone) = (pair[0], pair[1]);
        migrate(state, fake_risky && undone == scenario.risky);
        serve(state);
        check_state(&server, &db, &format!("{state} going back"));
    }
}

#[test]
fn every_scenarios_endpoints_answer_at_every_state_both_ways() {
    for case in CASES {
        walk_states(case, false);
    }
}

#[test]
fn the_endpoints_answer_at_every_state_where_the_safe_path_fakes_the_risky_step() {
    for case in CASES
        .into_iter()
        .filter(|c| c.scenario().safe_path_fakes_risky)
    {
        walk_states(case, true);
    }
}

#[test]
fn a_missing_table_is_a_json_503_in_any_server_language() {
    missing_table_is_a_503(Lang::English);
}

#[test]
#[cfg_attr(
    not(has_de_locale),
    ignore = "needs the de_DE.UTF-8 locale: localedef -i de_DE -f UTF-8 de_DE.UTF-8"
)]
fn a_missing_table_is_a_json_503_on_a_german_speaking_server() {
    missing_table_is_a_503(Lang::German);
}

fn missing_table_is_a_503(lang: Lang) {
    for case in [PROJ01, PROJ04] {
        let db = TestDb::new_in(case, lang);
        let server = TestServer::start(case.project, &db.url);
        let (status, body) = server.get("/list_large/");
        assert_eq!(status, 503);
        assert!(
            body["error"].as_str().unwrap().contains("not migrated"),
            "{body}"
        );
        let (status, _) = server.post("/large/", json!({"name": "x"}));
        assert_eq!(status, 503);
    }
}

#[test]
fn an_unreachable_database_is_a_json_503_without_secrets() {
    let port = risky_migrations::localdb::free_port().unwrap();
    let server = TestServer::start(
        PROJ04.project,
        &format!("postgres://postgres:s3cret@127.0.0.1:{port}/nowhere"),
    );
    let (status, body) = server.get("/list_large/");
    assert_eq!(status, 503);
    assert_eq!(body, json!({"error": "the database is unavailable"}));
}

#[test]
fn bad_writes_are_a_json_400() {
    let db = TestDb::new(PROJ04);
    let server = TestServer::start(PROJ04.project, &db.url);
    let (status, body) = server.post("/large/", json!({"nom": "x"}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = server.post("/large/", json!({"name": "x".repeat(101)}));
    assert_eq!(status, 400, "{body}");
}

/// The pool trusts a connection it used a moment ago, without a ping; one
/// that turns out dead answers 503 once and is closed, never handed out again.
#[test]
fn connections_the_server_lost_are_replaced() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "20"]);
    let server = TestServer::start(PROJ04.project, &db.url);
    assert_eq!(server.get("/list_large/").0, 200);
    let others =
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";
    // the pool opens its connections in the background: kill them all, not
    // the first while the others are still being opened
    while db.scalar(&format!("SELECT count(*) {others}")) < i64::from(TestServer::POOL_SIZE) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let killed = db.end_sessions(others);
    assert!(killed >= 1, "the server holds connections");
    let mut failures = 0;
    let mut successes = 0;
    while successes < 10 {
        match server.get("/list_large/") {
            (200, body) => {
                assert_eq!(body["count"], 10);
                successes += 1;
            }
            (503, body) => {
                assert_eq!(body, json!({"error": "the database is unavailable"}));
                assert_eq!(successes, 0, "a dead connection was handed out again");
                failures += 1;
                assert!(
                    failures <= killed,
                    "{failures} failures for {killed} dead connections"
                );
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
}

/// Writes that queue behind 0002's lock, going forward and back, are all
/// acknowledged: the endpoint looks at the schema after it has the table,
/// so it never inserts into a schema it did not look at.
#[test]
fn writes_queued_behind_the_risky_step_answer_201_both_ways() {
    use risky_migrations::instruments::load::Holder;
    let db = TestDb::new(PROJ01);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "1000"]);
    let server = TestServer::start(PROJ01.project, &db.url);
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                   AND datname = current_database()";
    for target in ["0002", "0001"] {
        let holder =
            Holder::start(&db.url, "large_user", std::time::Duration::from_secs(120)).unwrap();
        let args = ["migrate", target];
        let (mut migrator, lines) = db.spawn(&args);
        while db.scalar(waiting) < 1 {
            std::thread::yield_now();
        }
        let url = server.url("/large/");
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let url = url.clone();
                std::thread::spawn(move || {
                    match ureq::post(&url)
                        .timeout(std::time::Duration::from_secs(30))
                        .send_json(json!({"name": format!("queued_{i}")}))
                    {
                        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        // the migrator and the four writes all wait behind the holder
        while db.scalar(waiting) < 5 {
            std::thread::yield_now();
        }
        drop(holder);
        let statuses: Vec<u16> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let lines: Vec<String> = lines.collect();
        assert!(migrator.wait().unwrap().success(), "{lines:?}");
        assert_eq!(statuses, [201; 4], "writes queued behind migrate {target}");
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_user WHERE name LIKE 'queued_%'"),
        8
    );
}
