//! Safe under real conditions: lock timeouts with retries behind a long
//! transaction, giving up cleanly, SIGKILL and Ctrl-C in the middle of steps.

use std::process::Child;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use risky_migrations::instruments::load::Holder;

use crate::support::{Lang, PROJ01, PROJ04, TestDb};

const HOLD: Duration = Duration::from_secs(120);

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut text).unwrap();
    text
}

/// Ends the session a killed `manage` left behind, waiting until it is gone.
fn end_orphans(db: &TestDb) {
    db.end_sessions(
        "FROM pg_stat_activity
         WHERE application_name = 'risky_migrations migrate' AND datname = current_database()",
    );
}

/// The server really speaks `lang`: what the lab is tested against.
fn assert_speaks(db: &TestDb, lang: Lang) {
    let messages = db.text("current_setting('lc_messages')");
    assert_eq!(
        messages.starts_with("de_DE"),
        lang == Lang::German,
        "{messages}"
    );
}

fn recorded(db: &TestDb, version: &str) -> bool {
    db.scalar(&format!(
        "SELECT count(*) FROM __diesel_schema_migrations WHERE version = '{version}'"
    )) == 1
}

#[test]
fn a_safe_migration_behind_a_long_transaction_times_out_names_the_holder_and_retries() {
    behind_a_long_transaction_retries(Lang::English);
}

#[test]
#[cfg_attr(
    not(has_de_locale),
    ignore = "needs the de_DE.UTF-8 locale: localedef -i de_DE -f UTF-8 de_DE.UTF-8"
)]
fn a_safe_migration_behind_a_long_transaction_retries_on_a_german_speaking_server() {
    behind_a_long_transaction_retries(Lang::German);
}

fn behind_a_long_transaction_retries(lang: Lang) {
    let db = TestDb::new_in(PROJ04, lang);
    assert_speaks(&db, lang);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "1000"]);
    db.manage_ok(&["migrate", "0002", "--fake"]);
    let holder = Holder::start(&db.url, "large_record", HOLD).unwrap();
    let (mut child, mut lines) = db.spawn(&[
        "migrate",
        "0003",
        "--lock-timeout",
        "0.2",
        "--lock-retries",
        "50",
    ]);
    let retry = lines
        .find(|l| l.contains("lock_timeout (200ms) on large_record"))
        .expect("a lock_timeout line");
    assert!(
        retry.contains("held by pid ") && retry.contains("idle in transaction"),
        "{retry}"
    );
    assert!(
        retry.contains("SELECT 1 FROM large_record LIMIT 1"),
        "the holder's query is named: {retry}"
    );
    // between attempts, traffic gets through
    assert_eq!(db.scalar("SELECT count(*) FROM large_record"), 1000);
    drop(holder);
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains(" OK (")), "{rest:?}");
    assert!(recorded(&db, "0003"));
}

#[test]
fn a_safe_migration_that_never_gets_its_lock_gives_up_with_one_line_and_leaves_nothing_half_done() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["migrate", "0002", "--fake"]);
    let schema = db.schema();
    let holder = Holder::start(&db.url, "large_record", HOLD).unwrap();
    let output = db.manage(&[
        "migrate",
        "0003",
        "--lock-timeout",
        "0.1",
        "--lock-retries",
        "1",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("gave up after 2 attempts to lock large_record (100ms lock_timeout each)"),
        "{stderr}"
    );
    assert!(stderr.contains("run the same command again"), "{stderr}");
    assert!(!recorded(&db, "0003"));
    assert_eq!(db.schema(), schema, "nothing half done");
    drop(holder);
    db.manage_ok(&["migrate", "0003"]);
}

#[test]
fn the_safe_not_null_and_the_backfill_retry_statement_by_statement() {
    retry_statement_by_statement(Lang::English);
}

#[test]
#[cfg_attr(
    not(has_de_locale),
    ignore = "needs the de_DE.UTF-8 locale: localedef -i de_DE -f UTF-8 de_DE.UTF-8"
)]
fn the_safe_not_null_and_the_backfill_retry_on_a_german_speaking_server() {
    retry_statement_by_statement(Lang::German);
}

fn retry_statement_by_statement(lang: Lang) {
    let db = TestDb::at_0003_seeded_in(PROJ04, "3000", lang);
    assert_speaks(&db, lang);
    // a row lock blocks one backfill batch
    let holder = Holder::run(
        &db.url,
        "SELECT id FROM large_record WHERE id = 1500 FOR UPDATE",
        HOLD,
    )
    .unwrap();
    let (mut child, mut lines) = db.spawn(&[
        "migrate",
        "0004",
        "--batch-size",
        "1000",
        "--lock-timeout",
        "0.2",
        "--lock-retries",
        "50",
    ]);
    let retry = lines
        .find(|l| l.contains("lock_timeout (200ms) on large_record"))
        .expect("the batch waits");
    assert!(retry.contains("FOR UPDATE"), "{retry}");
    drop(holder);
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_record WHERE created_at_new IS NULL"),
        0
    );

    let holder = Holder::start(&db.url, "large_record", HOLD).unwrap();
    let (mut child, mut lines) = db.spawn(&[
        "migrate",
        "0005",
        "--lock-timeout",
        "0.2",
        "--lock-retries",
        "50",
    ]);
    lines
        .find(|l| l.contains("lock_timeout (200ms) on large_record"))
        .expect("a statement waits");
    drop(holder);
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success(), "{rest:?}");
    assert!(recorded(&db, "0005"));
}

fn column_type(db: &TestDb) -> String {
    db.text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'large_record'::regclass AND attname = 'created_at'")
}

#[test]
fn sigkill_during_the_risky_rewrite_leaves_the_table_as_it_was() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "400000"]);
    let rows = db.rows("large_record");
    let (mut child, mut lines) = db.spawn(&["migrate", "0002"]);
    lines
        .find(|l| l.contains("Changing LargeRecord.created_at"))
        .expect("the rewrite starts");
    child.kill().unwrap();
    child.wait().unwrap();
    end_orphans(&db);
    assert_eq!(
        column_type(&db),
        "character varying(50)",
        "the rewrite rolled back"
    );
    assert!(!recorded(&db, "0002"));
    assert_eq!(db.rows("large_record"), rows, "no row lost or changed");
    db.manage_ok(&["migrate", "0002"]);
    assert_eq!(column_type(&db), "timestamp with time zone");
}

#[test]
fn sigkill_between_the_statements_of_0005_and_the_rerun_finishes() {
    // enough rows that the validation after the first statement takes tens
    // of ms: the kill lands inside it, not after the migration is done
    let db = TestDb::at_0003_seeded(PROJ04, "200000");
    db.manage_ok(&["migrate", "0004"]);
    // from 18 on, 0005 is 18's two statements: the constraint it adds
    // first is the column's NOT NULL, kept once valid
    let pg18 = db.scalar("current_setting('server_version_num')::int") >= 180_000;
    let first = if pg18 {
        "✓ LargeRecord NOT NULL added, not yet validated"
    } else {
        "✓ LargeRecord check added"
    };
    let (mut child, mut lines) = db.spawn(&["migrate", "0005"]);
    lines
        .find(|l| l.contains(first))
        .expect("the first statement committed");
    child.kill().unwrap();
    child.wait().unwrap();
    end_orphans(&db);
    assert!(
        !recorded(&db, "0005"),
        "the migration table tells the truth"
    );
    let check =
        "SELECT count(*) FROM pg_constraint WHERE conname = 'large_record_created_at_new_not_null'";
    let not_null = "SELECT count(*) FROM pg_attribute WHERE attrelid = 'large_record'::regclass AND attname = 'created_at_new' AND attnotnull";
    // each statement is whole: the check is there (unless the kill came
    // after the last one), and NOT NULL holds only once it was validated
    assert!(db.scalar(check) == 1 || db.scalar(not_null) == 1);
    assert_eq!(db.scalar("SELECT count(*) FROM large_record"), 200000);
    db.manage_ok(&["migrate", "0005"]);
    let kept = if pg18 { 1 } else { 0 };
    assert_eq!((db.scalar(check), db.scalar(not_null)), (kept, 1));
    let unvalidated = "SELECT count(*) FROM pg_constraint WHERE conrelid = 'large_record'::regclass AND NOT convalidated";
    assert_eq!(db.scalar(unvalidated), 0);
    assert!(recorded(&db, "0005"));
}

#[test]
fn ctrl_c_while_a_step_waits_for_its_lock_cancels_it_in_any_language() {
    ctrl_c_cancels_the_wait(Lang::English);
}

#[test]
#[cfg_attr(
    not(has_de_locale),
    ignore = "needs the de_DE.UTF-8 locale: localedef -i de_DE -f UTF-8 de_DE.UTF-8"
)]
fn ctrl_c_while_a_step_waits_for_its_lock_cancels_it_on_a_german_speaking_server() {
    ctrl_c_cancels_the_wait(Lang::German);
}

fn ctrl_c_cancels_the_wait(lang: Lang) {
    {
        let db = TestDb::new_in(PROJ04, lang);
        assert_speaks(&db, lang);
        db.manage_ok(&["migrate", "0001"]);
        db.manage_ok(&["migrate", "0002", "--fake"]);
        let schema = db.schema();
        let holder = Holder::start(&db.url, "large_record", HOLD).unwrap();
        // a lock_timeout far longer than the test: only the cancel ends the wait
        let (mut child, mut lines) = db.spawn(&["migrate", "0003", "--lock-timeout", "600"]);
        lines
            .find(|l| l.contains("Applying demoapp.0003"))
            .expect("the step starts");
        let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                       AND application_name = 'risky_migrations migrate' AND datname = current_database()";
        while db.scalar(waiting) == 0 {
            assert!(child.try_wait().unwrap().is_none(), "manage ended early");
            std::thread::yield_now();
        }
        signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
        let status = child.wait().unwrap();
        let stderr = stderr_of(&mut child);
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains("interrupted (Ctrl-C): what was running is rolled back"),
            "{lang:?}: {stderr}"
        );
        assert!(!recorded(&db, "0003"));
        assert_eq!(db.schema(), schema, "rolled back");
        drop(holder);
    }
}

#[test]
fn ctrl_c_during_the_backfill_stops_cleanly_and_says_how_to_resume() {
    let db = TestDb::at_0003_seeded(PROJ04, "10000");
    let (mut child, mut lines) =
        db.spawn(&["migrate", "0004", "--batch-size", "500", "--pause", "0.05"]);
    lines
        .find(|l| l.contains("Batch 4 backfilled"))
        .expect("the backfill runs");
    signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr_of(&mut child);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");
    assert!(
        stderr.contains("run the same command again to finish it"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!recorded(&db, "0004"));
    let filled = db.scalar("SELECT count(created_at_new) FROM large_record");
    assert_eq!(filled % 500, 0, "whole batches only: {filled}");
    // the next run says where it resumes, not a line per empty batch
    let resumed = db.manage_ok(&["migrate", "0004", "--batch-size", "500"]);
    let skipped: String = resumed
        .split("resuming: the first ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no resuming line: {resumed}"))
        .replace(',', "");
    assert_eq!(skipped, filled.to_string(), "{resumed}");
    assert!(!resumed.contains("backfilled: 0 rows"), "{resumed}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_record WHERE created_at_new IS NULL"),
        0
    );
}

/// Two migrators started on one database: the second waits for the first,
/// then finds nothing left to do; history and schema agree, no row is lost.
#[test]
fn two_migrators_at_once_both_succeed_and_the_work_is_done_once() {
    let db = TestDb::new(PROJ01);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "20000"]);
    let rows = db.rows("large_user");
    let slow = ["migrate", "--batch-size", "1000", "--pause", "0.02"];
    let (mut first, mut first_lines) = db.spawn(&slow);
    first_lines
        .find(|l| l.contains("Applying demoapp.0002"))
        .expect("the first migrator runs");
    let (mut second, second_lines) = db.spawn(&slow);
    let second_lines: Vec<String> = second_lines.collect();
    let first_rest: Vec<String> = first_lines.collect();
    assert!(first.wait().unwrap().success(), "{first_rest:?}");
    assert!(
        second.wait().unwrap().success(),
        "{second_lines:?}\n{}",
        stderr_of(&mut second)
    );
    let waited = second_lines
        .iter()
        .find(|l| l.contains("Another migrator is running on this database"))
        .expect("the second migrator says it waits");
    assert!(waited.contains("risky_migrations migrate"), "{waited}");
    assert!(
        second_lines
            .iter()
            .any(|l| l.contains("No migrations to apply.")),
        "{second_lines:?}"
    );
    assert!(
        !second_lines.iter().any(|l| l.contains("Applying")),
        "nothing done twice: {second_lines:?}"
    );
    for version in ["0001", "0002", "0003", "0004", "0005"] {
        assert!(recorded(&db, version), "{version}");
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_user WHERE role IS NULL"),
        0
    );
    assert_eq!(
        db.text("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'large_user' AND column_name = 'role'"),
        "NO"
    );
    assert_eq!(
        db.text("SELECT count(*) || ':' || coalesce(md5(string_agg(id || ',' || name, '|' ORDER BY id)), '') FROM large_user")
            .split(':')
            .next(),
        rows.split(':').next(),
        "no row lost"
    );
}

/// A migrator killed while it holds the lock releases it with its session.
#[test]
fn a_killed_migrator_releases_the_lock() {
    let db = TestDb::new(PROJ01);
    // seeded before the column exists: the backfill has every row to fill
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "20000"]);
    db.manage_ok(&["migrate", "0003"]);
    let (mut child, mut lines) =
        db.spawn(&["migrate", "0004", "--batch-size", "500", "--pause", "0.05"]);
    lines
        .find(|l| l.contains("Batch 2 backfilled"))
        .expect("the backfill runs");
    child.kill().unwrap();
    child.wait().unwrap();
    db.manage_ok(&["migrate", "0004"]);
    assert!(recorded(&db, "0004"));
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_user WHERE role IS NULL"),
        0
    );
}

/// A real autovacuum, made slow, holds SHARE UPDATE EXCLUSIVE on the freshly
/// backfilled table when 0005 starts: PostgreSQL cancels it for the waiting
/// step (its deadlock check runs before the step's lock_timeout fires), so
/// 0005 completes with a couple of retries at most instead of giving up.
#[test]
fn an_autovacuum_in_the_way_yields_to_the_safe_not_null() {
    let db = TestDb::new_in(PROJ01, Lang::EagerAutovacuum);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "20000"]);
    // autovacuum off while the backfill leaves its dead rows behind
    db.conn()
        .batch_execute("ALTER TABLE large_user SET (autovacuum_enabled = false)")
        .unwrap();
    db.manage_ok(&["migrate", "0004"]);
    // then on, and slow: a sleep of 100 ms after every page or so
    db.conn()
        .batch_execute(
            "ALTER TABLE large_user SET (autovacuum_enabled = true, autovacuum_vacuum_threshold = 0,
                 autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 100,
                 autovacuum_vacuum_cost_limit = 1)",
        )
        .unwrap();
    let vacuuming = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' \
                     AND query LIKE '%large_user%' AND datname = current_database()";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while db.scalar(vacuuming) == 0 {
        assert!(std::time::Instant::now() < deadline, "no autovacuum came");
        std::thread::yield_now();
    }
    // two retries of 1 s: far less than the slowed vacuum takes
    let output = db.manage_ok(&[
        "migrate",
        "0005",
        "--lock-timeout",
        "1",
        "--lock-retries",
        "2",
    ]);
    assert!(recorded(&db, "0005"), "{output}");
    assert_eq!(
        db.text("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'large_user' AND column_name = 'role'"),
        "NO"
    );
}

/// A migrator role that may not lower `deadlock_timeout` (not a superuser)
/// raises its `lock_timeout` above it instead, says so once per step, and
/// migrates all the same.
#[test]
fn a_role_that_may_not_lower_deadlock_timeout_raises_its_lock_timeout() {
    let db = TestDb::new(PROJ04);
    let role = format!("{}_owner", db.name);
    db.conn()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; ALTER DATABASE {} OWNER TO {role}",
            db.name
        ))
        .unwrap();
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    let output =
        crate::support::manage_with_url(PROJ04.project, url.as_str(), &["migrate", "0001"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(
            "this role may not lower deadlock_timeout (1000ms), so lock_timeout goes from 1000ms to 1500ms"
        ),
        "{stdout}"
    );
    assert!(recorded(&db, "0001"));
}
