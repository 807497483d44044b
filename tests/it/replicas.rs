//! A primary with a hot standby: the backfill's replica-lag budget.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Stdio;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use risky_migrations::localdb::{Durability, Throwaway};

use crate::support::{PROJ01, manage_command};

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn scalar(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// A standby whose replay is paused falls behind as the backfill writes:
/// the backfill pauses before its next batch and says why, waits while the
/// standby stays behind, and goes on once replay resumes and catches up;
/// it ends with the peak lag and the time it spent paused.
#[test]
fn the_budgeted_backfill_waits_while_a_replica_falls_behind_and_finishes_when_it_catches_up() {
    // a pair of its own: pausing replay must not touch the other tests
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pg");
    let primary = Throwaway::start(&base, Durability::Throwaway).unwrap();
    primary.cluster.create_database("lab").unwrap();
    let standby = primary.standby(Durability::Throwaway).unwrap();
    let (primary_url, replica_url) = (primary.cluster.url("lab"), standby.cluster.url("lab"));
    let manage = |args: &[&str]| {
        let mut command = manage_command(PROJ01.project, &primary_url, args);
        command.env("REPLICA_URL", &replica_url);
        command
    };
    let ok = |args: &[&str]| {
        let output = manage(args).output().unwrap();
        assert!(output.status.success(), "{args:?}: {output:?}");
    };
    ok(&["migrate", "0001"]);
    ok(&["seed_large_table", "--large-count", "60000"]);
    ok(&["migrate", "0003"]);

    let mut replica = PgConnection::establish(&replica_url).unwrap();
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    let mut migrator = manage(&[
        "migrate",
        "0004",
        "--batch-size",
        "5000",
        // a walk that outlasts the limit, so a paused replica exceeds it
        "--pause",
        "0.1",
        "--max-replica-lag",
        "0.3",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = std::io::BufReader::new(migrator.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let pausing = line.contains("pausing: replica lag");
        seen.push(line);
        if pausing {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.contains("is over --max-replica-lag 0.3s")),
        "{seen:#?}"
    );
    // paused mid-walk: the rows after its first batches are not filled yet
    let mut conn = PgConnection::establish(&primary_url).unwrap();
    assert!(
        scalar(
            &mut conn,
            "SELECT count(*) AS n FROM large_user WHERE role IS NULL"
        ) > 0
    );

    replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    seen.extend(lines);
    let status = migrator.wait().unwrap();
    let text = seen.join("\n");
    assert!(status.success(), "{text}");
    assert!(text.contains("resumed after"), "{text}");
    // a summary per table walked: the large table's comes last
    let summary = text
        .lines()
        .rfind(|l| l.contains("Replica lag: peak"))
        .unwrap_or_else(|| panic!("no summary: {text}"));
    // printed to a tenth: a peak just over the limit prints as the limit
    let peak: f64 = summary
        .split("peak ")
        .nth(1)
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    let pauses: u32 = summary
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(peak >= 0.3 && pauses >= 1, "{summary}");
    assert_eq!(
        scalar(
            &mut conn,
            "SELECT count(*) AS n FROM large_user WHERE role IS NULL"
        ),
        0
    );
}

/// `manage demo --replica` beside a primary and its standby: per step, the
/// WAL written, the standby's lag, and what readers served from the
/// standby saw; the rewrite's ACCESS EXCLUSIVE is replayed there too.
#[test]
fn the_demo_with_a_replica_reports_wal_lag_and_the_standbys_readers() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let text = proj04_beside_a_standby(&[
        "demo",
        "--replica",
        "--large-count",
        "20000",
        "--settle",
        "0.2",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    let steps = report["projects"][0]["steps"].as_array().unwrap();
    for step in steps {
        let replica = &step["replica"];
        assert!(replica["reads"]["requests"].as_u64().unwrap() > 0, "{step}");
        assert_eq!(replica["reads"]["failures"], 0, "{step}");
    }
    let risky = steps.iter().find(|s| s["kind"] == "Risky").unwrap();
    assert!(
        risky["replica"]["wal_bytes"].as_i64().unwrap() > 1_000_000,
        "a rewrite of 20,000 rows is WAL: {risky}"
    );
    assert!(text.contains("standby behind by"), "{text}");
    // the backfill again on the same table, cleared first, within a budget
    let kinds: Vec<&str> = steps.iter().filter_map(|s| s["kind"].as_str()).collect();
    let budgeted = kinds
        .iter()
        .position(|k| *k == "Budgeted")
        .unwrap_or_else(|| panic!("no budgeted step: {kinds:?}"));
    assert_eq!(kinds[budgeted - 1], "Undo", "{kinds:?}");
    assert!(
        steps[budgeted]["name"]
            .as_str()
            .is_some_and(|n| n.contains("replica lag 1s")),
        "{}",
        steps[budgeted]
    );
    let log = std::fs::read_to_string(dir.path().join("proj04_change_column_type.log")).unwrap();
    assert!(log.contains("] Budget kept: "), "{log}");
}

/// `manage bench --replica`: every backfill run and the plain UPDATE with
/// the replay lag each caused, and a run within the budget next to them.
#[test]
fn the_bench_with_a_replica_adds_the_budgeted_backfill_and_the_lag_of_each_run() {
    let out = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let text = proj04_beside_a_standby(&[
        "bench",
        "--replica",
        "--only",
        "backfill",
        "--rows",
        "20000",
        "--batch-sizes",
        "10000",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let lines: Vec<&str> = text.lines().collect();
    let budgeted = lines
        .iter()
        .position(|l| l.contains("within a budget (replica lag 1s, 0 blocked, reads 250 ms)"))
        .unwrap_or_else(|| panic!("no budgeted run: {text}"));
    assert!(lines[budgeted].contains("<= 2x"), "{text}");
    // under it: the time it paused, then the lag it allowed against its limit
    assert!(
        lines[budgeted + 1].contains("of which paused by the budget ("),
        "{text}"
    );
    let lag = lines[budgeted..]
        .iter()
        .find(|l| l.contains("replica lag: peak"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(lag.contains("its limit, 1.0 s"), "{text}");
    // three runs and the floor, each with the lag it caused
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("replica lag: peak (it wrote"))
            .count(),
        4,
        "{text}"
    );
}

/// `manage <args>` for proj04 on a primary and a hot standby of its own
/// (DATABASE_URL's server answers, REPLICA_URL names the standby): what it
/// printed, once it succeeded.
fn proj04_beside_a_standby(args: &[&str]) -> String {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pg");
    let primary = Throwaway::start(&base, Durability::Throwaway).unwrap();
    let standby = primary.standby(Durability::Throwaway).unwrap();
    let output = manage_command(
        crate::support::PROJ04.project,
        &primary.cluster.url("postgres"),
        args,
    )
    .env("REPLICA_URL", standby.cluster.url("postgres"))
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}{stderr}");
    assert!(!stderr.contains("throwaway"), "{stderr}");
    text
}
