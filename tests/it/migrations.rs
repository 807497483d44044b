//! Every migration up, down and up again; the diesel CLI on the same database;
//! schema.rs against `diesel print-schema`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{PROJECT, TestDb, diesel_cli, root};

const NAMES: [&str; 5] = [
    "0001_initial",
    "0002_alter_largerecord_created_at_and_more",
    "0003_largerecord_created_at_new_and_more",
    "0004_backfill_created_at_new",
    "0005_alter_largerecord_created_at_new_and_more",
];

/// The original values, compared across states whatever the column types.
fn values(db: &TestDb) -> String {
    db.text(
        "SELECT count(*) || ':' || md5(string_agg(id || ',' || name || ',' || to_char(created_at::timestamptz, 'YYYY-MM-DD HH24:MI:SS'), '|' ORDER BY id)) FROM large_record",
    )
}

/// Walks the line one migration at a time; at each, down and up again must
/// give back the schema and rows of the state before and after.
fn up_down_up(fake_0002: bool) {
    let db = TestDb::new();
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&[
        "seed_large_table",
        "--large-count",
        "2500",
        "--batch-size",
        "1000",
    ]);
    let original = values(&db);
    let mut before = (
        db.schema(),
        db.rows("large_record"),
        db.rows("small_record"),
    );
    for (i, name) in NAMES.iter().enumerate().skip(1) {
        let version = &name[..4];
        let previous = &NAMES[i - 1][..4];
        let mut up = vec!["migrate", version, "--batch-size", "700"];
        if fake_0002 && version == "0002" {
            up.push("--fake");
        }
        db.manage_ok(&up);
        let after = (
            db.schema(),
            db.rows("large_record"),
            db.rows("small_record"),
        );
        let mut down = vec!["migrate", previous, "--batch-size", "700"];
        if fake_0002 && version == "0002" {
            down.push("--fake");
        }
        db.manage_ok(&down);
        assert_eq!(
            before.0,
            db.schema(),
            "{name} down did not restore the schema"
        );
        assert_eq!(
            (&before.1, &before.2),
            (&db.rows("large_record"), &db.rows("small_record")),
            "{name} down changed rows"
        );
        db.manage_ok(&up);
        assert_eq!(after.0, db.schema(), "{name} up again gave another schema");
        assert_eq!(
            (&after.1, &after.2),
            (&db.rows("large_record"), &db.rows("small_record")),
            "{name} up again changed rows"
        );
        assert_eq!(values(&db), original, "{name} changed the original values");
        before = after;
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_record WHERE created_at_new IS NULL"),
        0
    );
    // and all the way back to zero, then forward again
    db.manage_ok(&["migrate", "zero"]);
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('large_record', 'small_record')"
        ),
        0
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM __diesel_schema_migrations"),
        0
    );
}

#[test]
fn every_migration_goes_up_down_and_up_again() {
    up_down_up(false);
}

#[test]
fn the_safe_path_with_0002_faked_goes_up_down_and_up_again() {
    up_down_up(true);
}

#[test]
fn the_risky_0002_converts_every_value_and_its_way_down_restores_the_text() {
    let db = TestDb::new();
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "100"]);
    let text = db.rows("large_record");
    db.manage_ok(&["migrate", "0002"]);
    assert_eq!(db.text("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'large_record'::regclass AND attname = 'created_at'"), "timestamp with time zone");
    assert_eq!(
        db.text("SELECT created_at AT TIME ZONE 'UTC' FROM large_record WHERE id = 29"),
        "2024-01-01 10:00:00"
    );
    db.manage_ok(&["migrate", "0001"]);
    assert_eq!(db.rows("large_record"), text);
}

/// A `diesel.toml` without `print_schema`, so the CLI leaves schema.rs alone.
fn diesel_config() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("diesel-no-print-schema.toml");
    let migrations = root().join(PROJECT).join("migrations");
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
        .arg(diesel_config())
        .current_dir(root().join(PROJECT))
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
fn the_diesel_cli_and_manage_share_one_database() {
    if !diesel_cli() {
        return;
    }
    let by_manage = TestDb::new();
    by_manage.manage_ok(&["migrate", "0001"]);
    by_manage.manage_ok(&["seed_large_table", "--large-count", "1500"]);
    by_manage.manage_ok(&["migrate", "0002", "--fake"]);
    by_manage.manage_ok(&["migrate", "0005"]);

    let mixed = TestDb::new();
    mixed.manage_ok(&["migrate", "0001"]);
    mixed.manage_ok(&["seed_large_table", "--large-count", "1500"]);
    mixed.manage_ok(&["migrate", "0002", "--fake"]);
    // 0003 to 0005 through the diesel CLI: 0004 and 0005 are the SQL twins
    let ran = diesel(&mixed, &["migration", "run"]);
    assert!(
        ran.contains("Running migration 0004_backfill_created_at_new"),
        "{ran}"
    );
    assert_eq!(
        mixed.manage_ok(&["showmigrations"]),
        by_manage.manage_ok(&["showmigrations"])
    );
    assert_eq!(
        mixed.schema(),
        by_manage.schema(),
        "diesel's SQL twins and manage's Rust steps disagree"
    );
    assert_eq!(mixed.rows("large_record"), by_manage.rows("large_record"));

    // diesel reverts what manage applied, and manage re-applies it
    diesel(&mixed, &["migration", "revert"]);
    diesel(&mixed, &["migration", "revert"]);
    let listed = diesel(&mixed, &["migration", "list"]);
    assert!(
        listed.contains("[ ] 0004_backfill_created_at_new"),
        "{listed}"
    );
    assert_eq!(
        mixed.scalar("SELECT count(*) FROM large_record WHERE created_at_new IS NULL"),
        1500
    );
    mixed.manage_ok(&["migrate", "0005"]);
    assert_eq!(mixed.schema(), by_manage.schema());
    diesel(&mixed, &["migration", "redo"]);
    assert_eq!(mixed.schema(), by_manage.schema());
}

#[test]
fn schema_rs_is_what_diesel_print_schema_prints_at_0005() {
    if !diesel_cli() {
        return;
    }
    let db = TestDb::new();
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["migrate", "0002", "--fake"]);
    db.manage_ok(&["migrate", "0005"]);
    let printed = diesel(&db, &["print-schema"]);
    let committed =
        std::fs::read_to_string(root().join("src/scenarios/proj04_change_column_type/schema.rs"))
            .unwrap();
    assert_eq!(
        printed.trim(),
        committed.trim(),
        "run `diesel print-schema` at 0005 (0002 faked) and commit it"
    );
}
