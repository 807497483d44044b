//! Every migration up, down and up again; the diesel CLI on the same database;
//! schema.rs against `diesel print-schema`. For every project.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{CASES, Case, PROJ01, PROJ03, PROJ04, TestDb, manage_with_url, root};

/// The original values, compared across states whatever the column types
/// (of the rows no migration deletes: a purge's rows come and go).
fn values(db: &TestDb) -> String {
    let case = db.case;
    let kept = case
        .scenario()
        .purged
        .map_or_else(|| "true".to_owned(), |p| format!("NOT ({})", p.filter));
    db.text(&format!(
        "SELECT count(*) || ':' || md5(string_agg({}, '|' ORDER BY id)) FROM {} t WHERE {kept}",
        case.original,
        case.large(),
    ))
}

/// Walks the line one migration at a time; at each, down and up again must
/// give back the schema and rows of the state before and after.
fn up_down_up(case: Case, fake_risky: bool) {
    let scenario = case.scenario();
    let db = TestDb::new(case);
    db.manage_ok(&["migrate", scenario.start]);
    db.manage_ok(&[
        "seed_large_table",
        "--large-count",
        "2500",
        "--batch-size",
        "1000",
    ]);
    let original = values(&db);
    let snapshot = TestDb::snapshot;
    let mut before = snapshot(&db);
    let versions = case.versions();
    for pair in versions.windows(2) {
        let (previous, version) = (pair[0], pair[1]);
        let fake = fake_risky && version == scenario.risky;
        let step = |target| {
            let mut args = vec!["migrate", target, "--batch-size", "700"];
            if fake {
                args.push("--fake");
            }
            db.manage_ok(&args);
        };
        step(version);
        let after = snapshot(&db);
        step(previous);
        assert_eq!(
            before,
            snapshot(&db),
            "{} {version} down did not restore schema and rows",
            case.project
        );
        step(version);
        assert_eq!(
            after,
            snapshot(&db),
            "{} {version} up again gave another schema or rows",
            case.project
        );
        assert_eq!(
            values(&db),
            original,
            "{} {version} changed the original values",
            case.project
        );
        before = after;
    }
    assert_eq!(
        db.recipe_problems(),
        Vec::<String>::new(),
        "{}",
        case.project
    );
    db.manage_ok(&["migrate", "zero"]);
    let tables = format!(
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('{}')",
        case.scenario().tables().join("', '")
    );
    assert_eq!(db.scalar(&tables), 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM __diesel_schema_migrations"),
        0
    );
}

#[test]
fn every_migration_of_every_scenario_goes_up_down_and_up_again() {
    for case in CASES {
        up_down_up(case, false);
    }
}

#[test]
fn the_safe_path_with_the_risky_step_faked_goes_up_down_and_up_again() {
    for case in CASES
        .into_iter()
        .filter(|c| c.scenario().safe_path_fakes_risky)
    {
        up_down_up(case, true);
    }
}

#[test]
fn proj04_the_risky_0002_converts_every_value_and_its_way_down_restores_the_text() {
    let db = TestDb::new(PROJ04);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "100"]);
    let text = db.rows("large_record");
    db.manage_ok(&["migrate", "0002"]);
    assert_eq!(
        db.text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'large_record'::regclass AND attname = 'created_at'"),
        "timestamp with time zone"
    );
    assert_eq!(
        db.text("SELECT created_at AT TIME ZONE 'UTC' FROM large_record WHERE id = 29"),
        "2024-01-01 10:00:00"
    );
    db.manage_ok(&["migrate", "0001"]);
    assert_eq!(db.rows("large_record"), text);
}

#[test]
fn proj01_0002_gives_every_existing_row_status_active() {
    let db = TestDb::new(PROJ01);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "300"]);
    db.manage_ok(&["migrate", "0002"]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_user WHERE status = 'active'"),
        300
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_attrdef WHERE adrelid = 'large_user'::regclass"),
        0,
        "the default is dropped, as Django does"
    );
}

/// A `diesel.toml` without `print_schema`, so the CLI leaves schema.rs alone.
fn diesel_config(case: Case) -> PathBuf {
    let path =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("diesel-{}.toml", case.project));
    let migrations = root().join(case.project).join("migrations");
    std::fs::write(
        &path,
        format!(
            "[migrations_directory]\ndir = {:?}\n",
            migrations.display().to_string()
        ),
    )
    .unwrap();
    path
}

fn diesel(db: &TestDb, args: &[&str]) -> String {
    let output = Command::new("diesel")
        .args(args)
        .arg("--database-url")
        .arg(&db.url)
        .arg("--config-file")
        .arg(diesel_config(db.case))
        .current_dir(root().join(db.case.project))
        .output()
        .expect("diesel runs");
    assert!(
        output.status.success(),
        "diesel {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
#[cfg_attr(
    not(has_diesel_cli),
    ignore = "needs the diesel CLI: cargo install diesel_cli --no-default-features --features postgres"
)]
fn the_diesel_cli_and_manage_share_one_database() {
    for case in CASES {
        let by_manage = TestDb::seeded_past_risky(case, "1500");
        by_manage.manage_ok(&["migrate", case.end()]);

        let mixed = TestDb::seeded_past_risky(case, "1500");
        // the rest through the diesel CLI: the recipes' SQL twins
        let ran = diesel(&mixed, &["migration", "run"]);
        for dir in case.recipe_dirs() {
            assert!(ran.contains(&format!("Running migration {dir}")), "{ran}");
        }
        assert_eq!(
            mixed.manage_ok(&["showmigrations"]),
            by_manage.manage_ok(&["showmigrations"])
        );
        assert_eq!(
            mixed.schema(),
            by_manage.schema(),
            "{}: diesel's SQL twins and manage's Rust steps disagree",
            case.project
        );
        assert_eq!(mixed.digest(case.large()), by_manage.digest(case.large()));
        assert_eq!(mixed.recipe_problems(), Vec::<String>::new());

        // diesel reverts what manage applied, and manage re-applies it
        if let Some(first_recipe) = case.recipe_dirs().first() {
            let from_first_recipe = case
                .versions()
                .iter()
                .skip_while(|v| !first_recipe.starts_with(*v))
                .count();
            for _ in 0..from_first_recipe {
                diesel(&mixed, &["migration", "revert"]);
            }
            let listed = diesel(&mixed, &["migration", "list"]);
            assert!(listed.contains(&format!("[ ] {first_recipe}")), "{listed}");
            assert!(
                !mixed.recipe_problems().is_empty(),
                "{}: reverted, yet the recipes find their work done",
                case.project
            );
        } else {
            diesel(&mixed, &["migration", "revert"]);
        }
        mixed.manage_ok(&["migrate", case.end()]);
        assert_eq!(mixed.schema(), by_manage.schema());
        diesel(&mixed, &["migration", "redo"]);
        assert_eq!(mixed.schema(), by_manage.schema());
    }
}

#[test]
#[cfg_attr(
    not(has_diesel_cli),
    ignore = "needs the diesel CLI: cargo install diesel_cli --no-default-features --features postgres"
)]
fn schema_rs_is_what_diesel_print_schema_prints_at_the_end_of_the_safe_path() {
    for case in CASES {
        let db = TestDb::seeded_past_risky(case, "0");
        db.manage_ok(&["migrate", case.end()]);
        // diesel prints a joinable! for each foreign key; proj07's goes from
        // integer to bigint, which joinable! cannot express (it does not
        // compile), and the server never joins: the committed file leaves
        // them out
        let printed: String = diesel(&db, &["print-schema"])
            .lines()
            .filter(|l| !l.starts_with("diesel::joinable!"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("\n\n\n", "\n\n");
        let path = root()
            .join("src/scenarios")
            .join(case.project)
            .join("schema.rs");
        let committed = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            printed.trim(),
            committed.trim(),
            "run `diesel print-schema` at 0005 (the safe path) and commit it to {}",
            path.display()
        );
    }
}

/// What a database's history and schema are: what a refused command must
/// leave as it was.
fn history_and_schema(db: &TestDb) -> (String, String) {
    (
        db.text("SELECT string_agg(version, ',' ORDER BY version) FROM __diesel_schema_migrations"),
        db.schema(),
    )
}

/// One exported DATABASE_URL used in another project: every command that
/// reads or writes the history refuses with one line naming both
/// projects, and changes nothing.
#[test]
fn another_projects_database_is_refused_by_every_command_that_touches_the_history() {
    let db = TestDb::seeded_past_risky(PROJ04, "100");
    db.manage_ok(&["migrate", "0004"]);
    let before = history_and_schema(&db);
    let commands: [&[&str]; 7] = [
        &["showmigrations"],
        &["migrate", "demoapp", "0003"],
        &["migrate", "0003", "--fake"],
        &["migrate", "0004", "--fake"],
        &["migrate", "--plan"],
        &["migrate"],
        &["seed_large_table", "--large-count", "10"],
    ];
    for args in commands {
        let output = manage_with_url(PROJ03.project, &db.url, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} ran: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr
                .contains("this database belongs to proj04_change_column_type, not proj03_indexes"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(
        history_and_schema(&db),
        before,
        "a refused command changed nothing"
    );
    // its own project goes on as before
    db.manage_ok(&["migrate", "0005"]);
}

/// A database migrated before the mark existed: its own project adopts it
/// (its tables are there), another is refused and told whose it looks like.
#[test]
fn a_database_migrated_before_the_mark_is_adopted_by_the_project_whose_tables_it_holds() {
    let db = TestDb::seeded_past_risky(PROJ04, "100");
    db.exec("DROP SCHEMA risky_migrations CASCADE");
    let output = manage_with_url(PROJ03.project, &db.url, &["showmigrations"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("not proj03_indexes's tables (small_email, large_email); it holds proj04_change_column_type's"),
        "{stderr}"
    );
    db.manage_ok(&["migrate", "0003"]);
    assert_eq!(
        db.text("SELECT project FROM risky_migrations.project"),
        PROJ04.project
    );
}

/// The diesel CLI run in another project's directory refuses too: the
/// files call their project's guard first (a lone CONCURRENTLY statement
/// is guarded by the index it names), so nothing runs and nothing is
/// recorded.
#[test]
#[cfg_attr(
    not(has_diesel_cli),
    ignore = "needs the diesel CLI: cargo install diesel_cli --no-default-features --features postgres"
)]
fn the_diesel_cli_in_another_projects_directory_refuses_and_records_nothing() {
    let db = TestDb::seeded_past_risky(PROJ04, "100");
    db.manage_ok(&["migrate", "0004"]);
    let before = history_and_schema(&db);
    for (case, args) in [
        (PROJ03, &["migration", "revert"][..]),
        (PROJ01, &["migration", "revert"]),
        (PROJ01, &["migration", "run"]),
        (PROJ01, &["migration", "redo"]),
    ] {
        let output = Command::new("diesel")
            .args(args)
            .arg("--database-url")
            .arg(&db.url)
            .arg("--config-file")
            .arg(diesel_config(case))
            .current_dir(root().join(case.project))
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "diesel {args:?} in {} ran on proj04's database",
            case.project
        );
        assert_eq!(
            history_and_schema(&db),
            before,
            "diesel {args:?} in {}",
            case.project
        );
    }
}

/// Every pattern the lab registers is a test case here: the tests that
/// loop over CASES cover a new one, or this names what it lacks.
#[test]
fn every_registered_pattern_is_a_test_case() {
    let cased: Vec<&str> = CASES.iter().map(|c| c.project).collect();
    for scenario in risky_migrations::scenarios::all() {
        assert!(
            cased.contains(&scenario.project),
            "{} is registered but has no Case in tests/it/support.rs (its list JSON, its first rows)",
            scenario.project
        );
    }
}
