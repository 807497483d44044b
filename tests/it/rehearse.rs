//! `manage rehearse`: the lab's own migrations get the verdicts the lab
//! teaches; migrations nobody here wrote are rehearsed, not refused; the
//! locks it reports are the ones PostgreSQL's documentation gives; the
//! user's server keeps nothing of it.

use std::path::PathBuf;
use std::process::{Command, Output};

use risky_migrations::scenarios;
use risky_migrations::seed::Rows;

use crate::support::{CASES, PROJ04, TestDb, root};

/// `manage rehearse <args>` in a database of its own on `db`'s server.
fn rehearse(db: &TestDb, args: &[&str]) -> (Output, serde_json::Value) {
    rehearse_on(&["--database-url", &db.url], args)
}

/// `manage rehearse` where `place` says (`--database-url URL`, `--pg 18`).
fn rehearse_on(place: &[&str], args: &[&str]) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let json = dir.path().join("rehearse.json");
    let output = Command::new(env!("CARGO_BIN_EXE_manage"))
        .current_dir(root())
        .env("RUST_LOG", "warn")
        .arg("rehearse")
        .args(args)
        .args(place)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let report = std::fs::read(&json)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(serde_json::Value::Null);
    (output, report)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The rows the scenario seeds per table (its fixed ones, and `large` for
/// the large one), as --rows flags; the large table at `production` rows;
/// rows a purge matches, where the scenario deletes some.
fn sizes(scenario: &scenarios::Scenario, large: u64, production: u64) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(purged) = scenario.purged {
        args.extend(["--value".to_owned(), purged.rehearse_value.to_owned()]);
    }
    for table in scenario.seed.tables {
        let rows = match table.rows {
            Rows::Fixed(n) => n,
            Rows::Large => large,
        };
        args.extend(["--rows".to_owned(), format!("{}={rows}", table.table)]);
    }
    args.extend([
        "--production-rows".to_owned(),
        format!("{}={production}", scenario.large_table()),
        "--settle".to_owned(),
        "1s".to_owned(),
    ]);
    args
}

/// Each project's risky migration goes over the budget (exit 1) with
/// advice naming the project that shows the safe way; its safe path keeps
/// to it (exit 0). Rehearsed at 200,000 rows on the same budget, 1 s; the
/// safe paths judged at production's 10 M (the lab's own 10 M figures),
/// the risky steps at 30 M: the validating foreign key held its lock 1.4 s
/// at 10 M, but a prediction from 200,000 rows is near the budget and
/// fell under it once (996 ms, PostgreSQL 18.6 in CI).
#[test]
fn the_lab_projects_get_the_verdicts_the_lab_teaches() {
    let db = TestDb::new(PROJ04);
    for case in CASES {
        let scenario = case.scenario();
        let path = root().join(case.project).join("migrations");
        let path = path.to_str().unwrap();
        let at_10m = sizes(scenario, 200_000, 10_000_000);
        let at_10m: Vec<&str> = at_10m.iter().map(String::as_str).collect();
        let at_30m = sizes(scenario, 200_000, 30_000_000);
        let risky = scenario.risky;
        let mut args = vec![path, "--from", risky, "--to", risky];
        args.extend(at_30m.iter().map(String::as_str));
        let (output, report) = rehearse(&db, &args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {}",
            case.project,
            text(&output)
        );
        let named: Vec<&str> = report["migrations"][0]["statements"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["advice"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["project"].as_str().map(str::to_owned))
            .map(|p| scenarios::find(&p).unwrap().project)
            .collect();
        assert!(
            named.contains(&case.project),
            "{}: advice names {named:?}",
            case.project
        );

        // the safe path, rehearsed as it is deployed: a release of the
        // application between two migrations splits it in two rehearsals
        let safe: Vec<&str> = scenario
            .migrations()
            .iter()
            .map(|m| m.version)
            .skip_while(|v| *v != risky)
            .skip(1)
            .collect();
        let deploy = scenario.deploy.map(|d| d.before);
        let parts: Vec<&[&str]> = match safe.iter().position(|v| Some(*v) == deploy) {
            None | Some(0) => vec![&safe[..]],
            Some(at) => vec![&safe[..at], &safe[at..]],
        };
        for part in parts {
            let (first, last) = (part[0], part[part.len() - 1]);
            let mut args = vec![path, "--from", first, "--to", last];
            // the safe path records the risky step without running it
            if scenario.safe_path_fakes_risky {
                args.extend(["--skip", risky]);
            }
            if let Some(index) = case.unused_after_deploy.filter(|_| Some(first) == deploy) {
                args.extend(["--unused-index", index]);
            }
            args.extend(&at_10m);
            let (output, report) = rehearse(&db, &args);
            let said = text(&output);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{} {first}..{last}: {said}",
                case.project
            );
            assert_eq!(report["verdict"], "within_budget");
        }
    }
}

fn corpus() -> PathBuf {
    root().join("../shared/corpus/cratesio-migrations-until-2024/migrations")
}

/// crates.io's migrations until 2024 (MIT; in the shared corpus where CI
/// checks the project out): the last twenty each alone, and the last ten
/// in one run, at 20,000 rows a table; each migration is measured, or
/// failed with PostgreSQL's own error, never "could not rehearse".
#[test]
#[cfg_attr(
    not(has_corpus),
    ignore = "the shared corpus of real migrations is not beside the project (../shared/corpus)"
)]
fn migrations_nobody_here_wrote_are_rehearsed() {
    let db = TestDb::new(PROJ04);
    let path = corpus();
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("up.sql").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| risky_migrations::rehearse::source::diesel_version(n));
    let path = path.to_str().unwrap();
    let last: Vec<&String> = names.iter().rev().take(20).rev().collect();
    let mut runs: Vec<Vec<&str>> = last.iter().map(|m| vec![m.as_str(), m.as_str()]).collect();
    runs.push(vec![last[10].as_str(), last[19].as_str()]);
    for run in runs {
        let args = [
            path, "--from", run[0], "--to", run[1], "--rows", "20000", "--settle", "0.2s",
            "--load", "2",
        ];
        let (output, report) = rehearse(&db, &args);
        let said = text(&output);
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{run:?}: {said}"
        );
        assert!(!said.contains("could not rehearse"), "{run:?}: {said}");
        // measured; or failed with PostgreSQL's own error, the rest not run
        let mut failed = false;
        for migration in report["migrations"].as_array().unwrap() {
            match migration["status"].as_str().unwrap() {
                "ok" => assert!(!failed, "{run:?}: {migration}"),
                "failed" => {
                    assert!(migration["error"].is_string(), "{run:?}: {migration}");
                    failed = true;
                }
                _ => assert!(failed, "{run:?}: {migration}"),
            }
        }
        assert!(
            report["seeding_problems"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "{report}"
        );
    }
}

/// PostgreSQL's documentation of the locks common DDL takes (the table in
/// "Explicit Locking", and ALTER TABLE's own page), in an order where each
/// runs after the ones before; each a migration of its own, run in a
/// transaction and read from its backend, as rehearse reads it.
const DOCUMENTED: &[(&str, &str)] = &[
    ("SELECT * FROM items", "AccessShareLock"),
    ("SELECT * FROM items FOR UPDATE", "RowShareLock"),
    ("UPDATE items SET name = name", "RowExclusiveLock"),
    ("CREATE INDEX items_code_idx ON items (code)", "ShareLock"),
    (
        "CREATE TRIGGER t BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION noop()",
        "ShareRowExclusiveLock",
    ),
    (
        "ALTER TABLE items DISABLE TRIGGER USER",
        "ShareRowExclusiveLock",
    ),
    (
        "ALTER TABLE items ADD COLUMN extra int",
        "AccessExclusiveLock",
    ),
    (
        "ALTER TABLE items ALTER COLUMN code TYPE bigint",
        "AccessExclusiveLock",
    ),
    (
        "ALTER TABLE items ALTER COLUMN name SET NOT NULL",
        "AccessExclusiveLock",
    ),
    (
        "ALTER TABLE items ALTER COLUMN name SET DEFAULT 'x'",
        "AccessExclusiveLock",
    ),
    (
        "ALTER TABLE items ADD CONSTRAINT c CHECK (code > 0)",
        "AccessExclusiveLock",
    ),
    (
        "ALTER TABLE items ADD CONSTRAINT c2 CHECK (code > 0) NOT VALID",
        "AccessExclusiveLock",
    ),
    (
        "ALTER TABLE items ADD CONSTRAINT f FOREIGN KEY (parent) REFERENCES parents (id)",
        "ShareRowExclusiveLock",
    ),
    (
        "ALTER TABLE items VALIDATE CONSTRAINT pending",
        "ShareUpdateExclusiveLock",
    ),
    (
        "ALTER TABLE items ALTER COLUMN code SET STATISTICS 500",
        "ShareUpdateExclusiveLock",
    ),
    (
        "ALTER TABLE items SET (fillfactor = 90)",
        "ShareUpdateExclusiveLock",
    ),
    ("ANALYZE items", "ShareUpdateExclusiveLock"),
    (
        "CREATE STATISTICS s ON code, name FROM items",
        "ShareUpdateExclusiveLock",
    ),
    (
        "ALTER TABLE items RENAME COLUMN name TO title",
        "AccessExclusiveLock",
    ),
    ("DROP INDEX items_name_idx", "AccessExclusiveLock"),
    ("TRUNCATE items", "AccessExclusiveLock"),
    ("LOCK TABLE items", "AccessExclusiveLock"),
    ("DROP TABLE items", "AccessExclusiveLock"),
];

#[test]
fn the_locks_rehearse_reports_are_the_ones_postgresql_documents() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let setup = "CREATE TABLE parents (id bigint PRIMARY KEY);
        CREATE TABLE items (id bigint PRIMARY KEY, name text, code int NOT NULL, parent bigint);
        CREATE INDEX items_name_idx ON items (name);
        ALTER TABLE items ADD CONSTRAINT pending CHECK (code > 0) NOT VALID;
        CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;";
    std::fs::write(dir.path().join("0001_setup.sql"), setup).unwrap();
    for (i, (sql, _)) in DOCUMENTED.iter().enumerate() {
        let name = format!("{:04}_case.sql", i + 2);
        std::fs::write(dir.path().join(name), format!("{sql};\n")).unwrap();
    }
    let path = dir.path().to_str().unwrap();
    let args = [
        path,
        "--from",
        "0002_case.sql",
        "--rows",
        "100",
        "--settle",
        "0.2s",
        "--load",
        "1",
    ];
    let (output, report) = rehearse(&db, &args);
    let migrations = report["migrations"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", text(&output)));
    for ((sql, documented), migration) in DOCUMENTED.iter().zip(migrations) {
        let statement = &migration["statements"][0];
        let mode = statement["locks"]
            .as_array()
            .and_then(|locks| locks.iter().find(|l| l["relation"] == "items"))
            .and_then(|l| l["mode"].as_str());
        assert_eq!(mode, Some(*documented), "{sql}: {migration}");
    }
}

/// What the user's server keeps of a rehearsal: nothing, after a run that
/// completed and after Ctrl-C; its other databases untouched.
#[test]
fn the_users_server_keeps_nothing_of_a_rehearsal() {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt as _;
    let db = TestDb::new(PROJ04);
    db.exec("CREATE TABLE mine (id int); INSERT INTO mine VALUES (1), (2)");
    let mine = "SELECT sum(id)::text FROM mine";
    let left = |pid: u32| {
        db.scalar(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = 'risky_migrations_rehearsal_{pid}'"
        ))
    };
    let path = root().join("proj04_change_column_type/migrations");
    let path = path.to_str().unwrap();
    let start = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_manage"))
            .arg("rehearse")
            .arg(path)
            .args(args)
            .args(["--database-url", &db.url])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let finished = start(&["--rows", "1000", "--settle", "0.2s"]);
    let pid = finished.id();
    let output = finished.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!((left(pid), db.text(mine)), (0, "3".to_owned()));

    let mut stopped = start(&["--from", "0002", "--rows", "100000"]);
    let pid = stopped.id();
    let mut lines = BufReader::new(stopped.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.starts_with("load:"))),
        "the load starts"
    );
    assert_eq!(left(pid), 1, "the rehearsal works in a database of its own");
    killpg(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    assert_eq!(stopped.wait().unwrap().code(), Some(130));
    assert_eq!((left(pid), db.text(mine)), (0, "3".to_owned()));
}

/// What cannot be rehearsed says so in one line and exits 2.
#[test]
fn what_cannot_be_rehearsed_gets_one_line_and_exit_2() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::write(dir.path().join("broken.sql"), "CREATE TABLE (;\n").unwrap();
    let migrations = root().join("proj04_change_column_type/migrations");
    let broken = dir.path().join("broken.sql");
    let cases: [(Vec<&str>, &str); 3] = [
        (vec!["/no/such/path"], "/no/such/path does not exist"),
        (
            vec![migrations.to_str().unwrap(), "--from", "9999"],
            "no migration named or versioned \"9999\"",
        ),
        (
            vec![broken.to_str().unwrap()],
            "PostgreSQL's parser refuses it",
        ),
    ];
    for (args, said) in cases {
        let (output, _) = rehearse(&db, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(said), "{said:?} not in {stderr}");
    }
    let port = risky_migrations::localdb::free_port().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_manage"))
        .args(["rehearse", migrations.to_str().unwrap(), "--database-url"])
        .arg(format!("postgres://postgres@127.0.0.1:{port}/x"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

/// A migration that fails quotes PostgreSQL's error with its statement and
/// line, and the ones after it are not run.
#[test]
fn a_failing_migration_is_quoted_and_what_follows_is_not_run() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write(
        "1_create.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, a int);\n",
    );
    write(
        "2_fails.sql",
        "ALTER TABLE t ADD COLUMN b int;\n\nALTER TABLE t ADD COLUMN a int;\n",
    );
    write("3_after.sql", "ALTER TABLE t ADD COLUMN c int;\n");
    let (output, report) = rehearse(
        &db,
        &[
            dir.path().to_str().unwrap(),
            "--from",
            "2_fails",
            "--rows",
            "100",
            "--settle",
            "0.2s",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(migrations[0]["status"], "failed");
    let error = migrations[0]["error"].as_str().unwrap();
    assert!(
        error.contains("line 3: ALTER TABLE t ADD COLUMN a int"),
        "{error}"
    );
    assert_eq!(migrations[1]["status"], "not_run");
}

/// Plain files run as Flyway runs them: in one transaction, unless one
/// statement cannot run in one; Diesel's run_in_transaction = false with
/// several statements still runs them as one implicit transaction.
#[test]
fn statements_run_as_their_tool_sends_them() {
    let db = TestDb::new(PROJ04);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write(
        "1_create.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, a int);\n",
    );
    write(
        "2_index.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\nANALYZE t;\n",
    );
    let (output, report) = rehearse(
        &db,
        &[
            dir.path().to_str().unwrap(),
            "--rows",
            "1000",
            "--settle",
            "0.2s",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(report["migrations"][0]["in_transaction"], false);
    let diesel = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for (name, sql, metadata) in [
        (
            "2020-01-01-000000_create",
            "CREATE TABLE t (id bigint PRIMARY KEY, a int);",
            None,
        ),
        (
            "20200102000000_index",
            "CREATE INDEX CONCURRENTLY t_a ON t (a);\nANALYZE t;",
            Some("run_in_transaction = false\n"),
        ),
    ] {
        let migration = diesel.path().join(name);
        std::fs::create_dir(&migration).unwrap();
        std::fs::write(migration.join("up.sql"), sql).unwrap();
        if let Some(metadata) = metadata {
            std::fs::write(migration.join("metadata.toml"), metadata).unwrap();
        }
    }
    std::fs::write(diesel.path().join("README.md"), "loose\n").unwrap();
    let (output, report) = rehearse(
        &db,
        &[
            diesel.path().to_str().unwrap(),
            "--rows",
            "1000",
            "--settle",
            "0.2s",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let error = report["migrations"][0]["error"].as_str().unwrap();
    assert!(error.contains("CREATE INDEX CONCURRENTLY"), "{error}");
    assert_eq!(report["ignored"][0], "README.md");
}

fn eugene(case: &str) -> PathBuf {
    root().join("tests/rehearse/eugene").join(case)
}

/// Each of eugene's hints about locks and rewrites, written here from the
/// hint's description (tests/rehearse/eugene/): rehearse finds the hazard
/// in its own kind of migration, measured, and passes the safer version.
/// At 200,000 rows, judged at 20 M on the default budget (docs/rehearse.md
/// has the run at 2 M, measured, on the lab's budget for a safe step).
#[test]
fn eugenes_hazards_are_found_measured_and_their_safer_versions_pass() {
    let db = TestDb::new(PROJ04);
    for case in ["E1", "E2", "E5", "E6", "E7", "E10", "E11"] {
        for (side, expected) in [("bad", 1), ("good", 0)] {
            let dir = eugene(case).join(side);
            if !dir.is_dir() {
                continue;
            }
            let args = [
                dir.to_str().unwrap(),
                "--from",
                "002",
                "--rows",
                "200000",
                "--production-rows",
                "items=20000000",
                "--settle",
                "0.5s",
            ];
            let (output, _) = rehearse(&db, &args);
            let said = text(&output);
            assert_eq!(
                output.status.code(),
                Some(expected),
                "{case} {side}: {said}"
            );
            if expected == 1 {
                assert!(said.contains("advice:"), "{case}: {said}");
            }
        }
    }
}

/// PostgreSQL 18's own route to NOT NULL: the constraint added `NOT
/// VALID` (a moment of ACCESS EXCLUSIVE), then validated under SHARE
/// UPDATE EXCLUSIVE, the load going on.
#[test]
#[cfg_attr(
    not(has_pg_clients),
    ignore = "needs pip, python3 and npm to install PostgreSQL 18: apt-get install python3-pip npm"
)]
fn postgresql_18_validates_a_not_null_constraint_without_stopping_the_load() {
    let dir = root().join("tests/rehearse/pg18/not-null-not-valid");
    let args = [dir.to_str().unwrap(), "--from", "002", "--rows", "200000"];
    let (output, report) = rehearse_on(&["--pg", "18"], &args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        report["postgres"]
            .as_str()
            .unwrap()
            .starts_with("PostgreSQL 18.")
    );
    let validate = &report["migrations"][1]["statements"][0];
    assert!(
        validate["sql"].as_str().unwrap().contains("VALIDATE"),
        "{validate}"
    );
    let modes: Vec<&str> = validate["locks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["relation"] == "items")
        .map(|l| l["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["ShareUpdateExclusiveLock"], "{validate}");
    assert_eq!(validate["load"]["failures"], 0);
}

/// What Django 5.2 emits for a field with a default (its SQL, printed by
/// sqlmigrate, in tests/rehearse/django-defaults/): a callable `default=`
/// becomes a constant, dropped at once (running code that leaves the
/// column out fails its inserts from then on); `db_default=Now()` is
/// stable and a constant is kept in the catalog, as `SET DEFAULT` is: no
/// rewrite; a volatile `db_default=RandomUUID()` or `clock_timestamp()`
/// rewrites the table.
#[test]
fn djangos_defaults_rewrite_only_where_the_default_is_volatile() {
    let db = TestDb::new(PROJ04);
    let dir = root().join("tests/rehearse/django-defaults");
    let args = [
        dir.to_str().unwrap(),
        "--from",
        "002",
        "--to",
        "007",
        "--rows",
        "100000",
    ];
    let (output, report) = rehearse(&db, &args);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let statements: Vec<&serde_json::Value> = report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["statements"].as_array().unwrap())
        .collect();
    let rewrote: Vec<bool> = statements
        .iter()
        .map(|s| !s["rewrote"].as_array().unwrap().is_empty())
        .collect();
    // 002 ADD and DROP DEFAULT, 003 Now(), 004 'draft', 005 SET DEFAULT,
    // 006 RandomUUID(), 007 clock_timestamp()
    assert_eq!(
        rewrote,
        [false, false, false, false, false, true, true],
        "{}",
        text(&output)
    );
    let dropped_default = &statements[1];
    assert!(
        dropped_default["load"]["failures"].as_u64().unwrap() > 0,
        "the load's inserts leave public_id out: {dropped_default}"
    );
}
