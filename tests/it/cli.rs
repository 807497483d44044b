//! `manage` as a user runs it: exact output, and one clear line for bad input.

use crate::support::{CASES, PROJ01, PROJ04, TestDb, manage_with_url, mask_times};

const RULE: &str = "============================================================";

#[test]
fn showmigrations_prints_djangos_format() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["migrate", "demoapp", "0002", "--fake"]);
    assert_eq!(
        db.manage_ok(&["showmigrations", "demoapp"]),
        "demoapp\n [X] 0001_initial\n [X] 0002_alter_largerecord_created_at_and_more\n [ ] 0003_largerecord_created_at_new_and_more\n [ ] 0004_backfill_created_at_new\n [ ] 0005_alter_largerecord_created_at_new_and_more\n"
    );
}

#[test]
fn proj01_showmigrations_prints_djangos_format() {
    let db = TestDb::new(PROJ01);
    db.manage_ok(&["migrate", "0003"]);
    assert_eq!(
        db.manage_ok(&["showmigrations"]),
        "demoapp\n [X] 0001_initial\n [X] 0002_largeuser_status_smalluser_status\n [X] 0003_largeuser_role_smalluser_role\n [ ] 0004_backfill_role\n [ ] 0005_alter_largeuser_role_alter_smalluser_role\n"
    );
}

#[test]
fn proj01_migrate_0002_prints_the_timing_lines() {
    let db = TestDb::new(PROJ01);
    db.manage_ok(&["migrate", "0001"]);
    let out = mask_times(&db.manage_ok(&["migrate", "demoapp", "0002"]));
    assert_eq!(
        out,
        format!(
            "Operations to perform:
  Target specific migration: 0002_largeuser_status_smalluser_status, from demoapp
Running migrations:
  Applying demoapp.0002_largeuser_status_smalluser_status...
{RULE}
[T] Starting migration: Adding status field
{RULE}

[T] Adding SmallUser.status (NOT NULL DEFAULT 'active')...
[T] ✓ SmallUser.status added (Ns)

[T] Adding LargeUser.status (NOT NULL DEFAULT 'active')...
[T] ✓ LargeUser.status added (Ns)

{RULE}
[T] Migration completed
{RULE}
 OK (Ns)
"
        )
    );
}

#[test]
fn migrate_0002_prints_the_seeds_timing_lines() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    let out = mask_times(&db.manage_ok(&["migrate", "demoapp", "0002"]));
    assert_eq!(
        out,
        format!(
            "Operations to perform:
  Target specific migration: 0002_alter_largerecord_created_at_and_more, from demoapp
Running migrations:
  Applying demoapp.0002_alter_largerecord_created_at_and_more...
{RULE}
[T] Starting migration: Changing column type
{RULE}

[T] Changing SmallRecord.created_at from VARCHAR to DATETIME...
[T] ✓ SmallRecord column type changed (Ns)

[T] Changing LargeRecord.created_at from VARCHAR to DATETIME...
[T] ✓ LargeRecord column type changed (Ns)

{RULE}
[T] Migration completed
{RULE}
 OK (Ns)
"
        )
    );
    let again = db.manage_ok(&["migrate", "0002"]);
    assert!(
        again.ends_with("Running migrations:\n  No migrations to apply.\n"),
        "{again}"
    );
}

#[test]
fn the_backfill_prints_a_line_per_batch() {
    let db = TestDb::at_0003_seeded(PROJ04, "2500");
    let out = mask_times(&db.manage_ok(&["migrate", "0004", "--batch-size", "1000"]));
    assert!(
        out.contains(
            "[T] Backfilling LargeRecord.created_at_new in batches of 1,000...
[T] Batch 1 backfilled: 1,000 rows (Ns)
[T] Batch 2 backfilled: 1,000 rows (Ns)
[T] Batch 3 backfilled: 500 rows (Ns)
[T] Backfill complete! Total: 2,500 rows
[T] ✓ LargeRecord.created_at_new backfilled (Ns)
"
        ),
        "{out}"
    );
}

#[test]
fn plan_and_sqlmigrate_show_without_running() {
    let db = TestDb::new(PROJ04);
    let plan = db.manage_ok(&["migrate", "0003", "--plan"]);
    assert!(
        plan.starts_with("Planned operations:\ndemoapp.0001_initial\n    Creating tables\n"),
        "{plan}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'large_record'"),
        0
    );
    let sql = db.manage_ok(&["sqlmigrate", "demoapp", "0005"]);
    assert!(
        sql.contains(
            "ALTER TABLE large_record VALIDATE CONSTRAINT large_record_created_at_new_not_null;"
        ),
        "{sql}"
    );
    let sql = db.manage_ok(&["sqlmigrate", "0002"]);
    assert!(
        sql.starts_with("BEGIN;\n") && sql.ends_with("COMMIT;\n"),
        "{sql}"
    );
    let down = db.manage_ok(&["sqlmigrate", "0004", "--backwards"]);
    assert!(
        down.contains("SET created_at_new = NULL WHERE id > $1 AND id <= $2"),
        "{down}"
    );
}

/// One line on stderr, a non-zero exit, no panic.
fn fails_with(output: std::process::Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "expected a failure, got: {stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
    stderr
}

#[test]
fn bad_input_gets_one_clear_line() {
    let db = TestDb::new(PROJ04);
    fails_with(
        db.manage(&["migrate", "0009"]),
        "Cannot find a migration matching '0009'",
    );
    fails_with(
        db.manage(&["migrate", "000"]),
        "More than one migration matches '000'",
    );
    fails_with(
        db.manage(&["migrate", "otherapp", "0001"]),
        "No installed app with label 'otherapp'",
    );
    fails_with(
        db.manage(&["seed_large_table", "--large-count", "-5"]),
        "must be zero or more, got -5",
    );
    fails_with(
        db.manage(&["seed_large_table", "--large-count", "lots"]),
        "must be a whole number",
    );
    fails_with(
        db.manage(&["seed_large_table", "--large-count", "99999999999999999999"]),
        "is too large: at most 9,223,372,036,854,775,807",
    );
    fails_with(
        db.manage(&["migrate", "--batch-size", "0"]),
        "must be at least 1",
    );
    let other = std::process::Command::new(env!("CARGO_BIN_EXE_manage"))
        .args(["--project", "proj99", "showmigrations"])
        .output()
        .unwrap();
    let known: Vec<&str> = risky_migrations::scenarios::all()
        .iter()
        .map(|s| s.project)
        .collect();
    fails_with(
        other,
        &format!(
            "unknown project \"proj99\" (known projects: {})",
            known.join(", ")
        ),
    );
    fails_with(db.manage(&["runserver", "nope"]), "not a valid port number");
    fails_with(
        db.manage(&["runserver", "--release", "3"]),
        "3 is not in 1..=2",
    );
    fails_with(
        db.manage(&["sqlmigrate"]),
        "not provided: <APP_LABEL|MIGRATION>",
    );
    fails_with(
        db.manage(&["migrate", "--max-latency", "0.2"]),
        "--max-latency needs --throttle-url",
    );
    fails_with(
        db.manage(&["migrate", "--throttle-url", "localhost:8002"]),
        "must be an http:// or https:// URL",
    );
    fails_with(
        db.manage(&["migrate", "--max-blocked-sessions", "some"]),
        "invalid value 'some'",
    );
}

#[test]
fn a_missing_table_is_named_with_the_state_it_needs() {
    let db = TestDb::new(PROJ04);
    fails_with(
        db.manage(&["seed_large_table", "--large-count", "5"]),
        "table small_record does not exist: run `manage migrate 0001` first",
    );
}

#[test]
fn an_unreachable_database_is_named_without_its_password() {
    let port = risky_migrations::localdb::free_port().unwrap();
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{port}/risky_migrations");
    for args in [
        &["showmigrations"][..],
        &["migrate", "0001"],
        &["seed_large_table", "--large-count", "5"],
    ] {
        let stderr = fails_with(
            manage_with_url(PROJ01.project, &url, args),
            &format!("cannot connect to PostgreSQL at 127.0.0.1:{port}/risky_migrations"),
        );
        assert!(!stderr.contains("s3cret"), "{stderr}");
        assert!(stderr.contains("manage localdb start"), "{stderr}");
    }
}

#[test]
fn seeding_works_at_every_state() {
    for case in CASES {
        let db = TestDb::new(case);
        let versions = case.versions();
        db.manage_ok(&["migrate", versions[0]]);
        for state in &versions[1..] {
            db.manage_ok(&["migrate", state]);
            let out = db.manage_ok(&[
                "seed_large_table",
                "--large-count",
                "50",
                "--batch-size",
                "7",
            ]);
            assert!(
                out.contains(&format!("✓ 50 {} rows created", case.large_model())),
                "{out}"
            );
            assert_eq!(
                db.scalar(&format!("SELECT count(*) FROM {}", case.large())),
                50,
                "at {state}"
            );
            assert_eq!(
                db.scalar(&format!("SELECT max(id) FROM {}", case.small())),
                10
            );
            // the identity continues after the explicit ids
            let next = format!(
                "SELECT nextval(pg_get_serial_sequence('{}', 'id'))",
                case.large()
            );
            assert_eq!(db.scalar(&next), 51);
        }
        assert_eq!(db.recipe_problems(), Vec::<String>::new());
    }
}

/// The server alone (the Docker image's): Django's banner on stdout, the
/// endpoints, and one access-log line per request on stderr.
#[test]
fn the_server_binary_serves_and_logs_each_request() {
    use std::io::BufRead;
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "20"]);
    let port = risky_migrations::localdb::free_port().unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_risky_migrations"))
        .current_dir(crate::support::root().join(PROJ04.project))
        .env("DATABASE_URL", &db.url)
        .env_remove("RUST_LOG")
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let banner = format!("Starting development server at http://127.0.0.1:{port}/");
    assert!(
        stdout.any(|l| l.is_ok_and(|l| l == banner)),
        "no banner: {banner}"
    );
    let body: serde_json::Value = ureq::get(&format!("http://127.0.0.1:{port}/list_large/"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(body["count"], 10);
    // a missing line must fail the test, not hang it: stop the server in time
    let pid = nix::unistd::Pid::from_raw(server.id() as i32);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .is_err()
        {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let logged = stderr.find_map(|l| l.ok().filter(|l| l.contains("\"GET /list_large/")));
    let _ = done.send(());
    server.kill().unwrap();
    server.wait().unwrap();
    let logged = logged.expect("an access-log line");
    assert!(
        logged.contains("\"GET /list_large/ HTTP/1.1\" 200 ") && !logged.contains('\u{1b}'),
        "{logged}"
    );
}

/// A count far beyond the database's disk is refused with an estimate,
/// before anything is removed; `--yes` would seed anyway.
#[test]
fn a_seed_that_cannot_fit_on_the_disk_is_refused_with_an_estimate() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "30"]);
    let stderr = fails_with(
        db.manage(&["seed_large_table", "--large-count", "1000000000000000"]),
        "rows need about",
    );
    assert!(
        stderr.contains("free: not seeding (--yes to seed anyway)"),
        "{stderr}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_record"),
        30,
        "nothing removed"
    );
}

/// `runserver` before its database: one warning naming the way to get one,
/// then 503s; the pool says the database is gone once, not per retry.
#[test]
fn runserver_before_its_database_says_so_once_and_serves_503s() {
    use std::io::Read;
    let port = risky_migrations::localdb::free_port().unwrap();
    let db_port = risky_migrations::localdb::free_port().unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{db_port}/nowhere");
    let mut server =
        crate::support::manage_command(PROJ04.project, &url, &["runserver", &port.to_string()])
            .env("RUST_LOG", "info,actix_server=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let address = format!("http://127.0.0.1:{port}/list_large/");
    let status = loop {
        match ureq::get(&address).call() {
            Err(ureq::Error::Status(status, _)) => break status,
            Ok(response) => break response.status(),
            Err(_) => std::thread::yield_now(),
        }
    };
    assert_eq!(status, 503);
    // the pool keeps retrying meanwhile: two more requests, each a 2 s wait
    for _ in 0..2 {
        assert!(matches!(
            ureq::get(&address).call(),
            Err(ureq::Error::Status(503, _))
        ));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let mut stderr = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let warnings: Vec<&str> = stderr.lines().filter(|l| !l.contains("\"GET ")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings.iter().any(|l| l.contains("manage localdb start")),
        "{stderr}"
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("answering 503 until it is back")),
        "{stderr}"
    );
}

/// After an undo faked from 0005 (Django fakes 0003-0005 back), migrating
/// forward again meets the columns already there: the error says the true
/// way out, and following it works.
#[test]
fn a_migration_whose_work_is_already_there_says_to_fake_it() {
    let db = TestDb::new(PROJ01);
    db.manage_ok(&["migrate", "0005"]);
    db.manage_ok(&["migrate", "0002", "--fake"]);
    let stderr = fails_with(db.manage(&["migrate", "0005"]), "already has what it adds");
    assert!(stderr.contains("manage migrate 0003 --fake"), "{stderr}");
    assert!(!stderr.contains("run the same command again"), "{stderr}");
    db.manage_ok(&["migrate", "0003", "--fake"]);
    db.manage_ok(&["migrate", "0005"]);
}

/// Something that is not PostgreSQL on the database port: one line, in
/// seconds, instead of waiting forever.
#[test]
fn a_port_that_does_not_answer_as_postgresql_fails_in_seconds() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("postgres://u@{}/db", silent.local_addr().unwrap());
    let stderr = fails_with(
        manage_with_url(PROJ04.project, &url, &["showmigrations"]),
        "no answer in time",
    );
    assert!(
        stderr.contains("is what listens there PostgreSQL?"),
        "{stderr}"
    );
}

#[test]
fn a_probe_url_without_scheme_and_a_project_given_as_a_path() {
    let db = TestDb::new(PROJ04);
    let stderr = fails_with(
        db.manage(&["probe", "--url", "localhost:8000", "--count", "1"]),
        "is not an http:// URL",
    );
    assert!(
        stderr.contains("http://127.0.0.1:8000/list_large/"),
        "{stderr}"
    );
    let output = manage_with_url(
        "../proj04_change_column_type/",
        &db.url,
        &["sqlmigrate", "0002"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `manage probe | head -1`: when the reader goes, manage ends quietly.
#[test]
fn a_closed_output_ends_the_probe_quietly() {
    use std::io::BufRead;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    drop(silent);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_manage"))
        .args([
            "probe",
            "--url",
            &url,
            "--interval",
            "0.01",
            "--count",
            "1000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("Request 1"), "{first}");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
