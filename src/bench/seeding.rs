//! Seeding: `seed_large_table` (a child process, so its peak RSS is its
//! own) against `INSERT INTO <copy of the table> SELECT .. FROM
//! generate_series`, the same rows with PostgreSQL doing all the work. Both
//! are logged (crash-safe), both maintain the primary key while loading.
//! Seeding also runs at a tenth of the rows, to show its memory is flat.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::{BenchError, Figure, secs};
use crate::db;
use crate::scenarios::Scenario;

/// Seeds `rows` rows with `manage seed_large_table`, as a user runs it, and
/// returns how many seconds it took and its peak memory in MiB (as the
/// command reports it: the peak of this process's children would count
/// whatever else it ran, initdb among them).
pub fn seed_rows(
    manage: &Path,
    database_url: &str,
    scenario: &Scenario,
    rows: u64,
    status: &dyn Fn(&str),
) -> Result<(f64, f64), BenchError> {
    status(&format!(
        "seeding {} rows (manage seed_large_table)",
        indicatif::HumanCount(rows)
    ));
    let started = Instant::now();
    let output = Command::new(manage)
        .env("DATABASE_URL", database_url)
        .args([
            "--project",
            scenario.project(),
            "seed_large_table",
            "--large-count",
            &rows.to_string(),
        ])
        .output()?;
    if !output.status.success() {
        return Err(BenchError::Tool {
            what: "seed_large_table".to_owned(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let took = secs(started);
    let said = String::from_utf8_lossy(&output.stdout);
    let peak = said
        .rsplit_once("peak memory ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|mib| mib.parse::<f64>().ok())
        .ok_or_else(|| BenchError::Tool {
            what: "seed_large_table".to_owned(),
            detail: format!("no peak memory in its output: {said}"),
        })?;
    Ok((took, peak))
}

/// Seeding: ours (a child `manage seed_large_table`) against the floor.
pub fn seeding(
    manage: &Path,
    database_url: &str,
    scenario: &Scenario,
    rows: u64,
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    let plan = scenario.seed_plan();
    let seed = |n: u64| seed_rows(manage, database_url, scenario, n, status);
    let (_, small_rss) = seed((rows / 10).max(1))?;
    let (ours, large_rss) = seed(rows)?;

    status("the floor: INSERT .. SELECT generate_series into a copy of the table");
    let mut conn = db::connect(database_url)?;
    let large = plan.large().table;
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench_floor; CREATE TABLE bench_floor (LIKE {large} INCLUDING ALL)"
    ))?;
    let started = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO bench_floor ({}) {}",
        plan.floor_columns, plan.floor_select
    ))
    .bind::<diesel::sql_types::BigInt, _>(rows as i64)
    .execute(&mut conn)?;
    let floor = secs(started);
    conn.batch_execute("DROP TABLE bench_floor")?;
    Ok(vec![
        Figure::new(
            format!("seed_large_table, {} rows", indicatif::HumanCount(rows)),
            ours,
            Some(floor),
            "s",
            "<= 1.3x",
        ),
        Figure::new(
            format!(
                "seeding peak RSS at {} rows vs at {}",
                indicatif::HumanCount(rows),
                indicatif::HumanCount((rows / 10).max(1))
            ),
            large_rss,
            Some(small_rss),
            "MiB",
            "flat (~1.0x)",
        ),
    ])
}
