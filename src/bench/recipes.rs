//! Recipes: each safe DDL recipe (an index built concurrently, a foreign
//! key validated apart, NOT NULL through a check) against the one
//! statement it does the work of (rolled back), a write probe running:
//! what letting writes through costs in time, and what it spares them.

use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::{BenchError, Figure, just_before};
use crate::instruments::probe::{self, Method};
use crate::instruments::{ProbeSpec, Setup, Target};
use crate::migrations::runner::{self, MigrateOptions};
use crate::scenarios::Scenario;

/// Each DDL recipe's migration against the one statement it replaces,
/// from the same state, with writes probed all along.
pub fn recipes(
    database_url: &str,
    scenario: &'static Scenario,
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    let timed: Vec<(&str, &dyn crate::recipes::Recipe, (&str, String))> = scenario
        .rust_migrations
        .iter()
        .filter_map(|(v, r)| r.one_statement().map(|one| (*v, *r, one)))
        .collect();
    if timed.is_empty() {
        return Ok(Vec::new());
    }
    let instruments = super::with_server(
        scenario,
        Setup {
            probes: vec![ProbeSpec {
                label: "writes".to_owned(),
                target: Target::Lab(scenario.write_probe),
                method: Method::Post,
                interval: Duration::from_millis(20),
                timeout: Duration::from_secs(10),
            }],
            ..Setup::on(database_url)
        },
    )?;
    let mut windows = Vec::new();
    for (version, recipe, (what, sql)) in timed {
        status(&format!("{version} {}", recipe.label()));
        let Both { ours, floor } = time_both(database_url, scenario, version, &sql, &instruments)?;
        windows.push((format!("{version} {}", recipe.label()), what, ours, floor));
    }
    let measured = instruments.finish();
    let samples = measured.samples("writes");
    let during = |window| probe::summarize_during(samples, window);
    let mut figures = Vec::new();
    for (name, what, ours, floor) in windows {
        figures.push(Figure::new(
            format!("{name} vs one {what}"),
            (ours.1 - ours.0) / 1000.0,
            Some((floor.1 - floor.0) / 1000.0),
            "s",
            "the price of letting writes through",
        ));
        let (w_ours, w_floor) = (during(ours), during(floor));
        figures.push(Figure::new(
            format!(
                "  writes' max latency during it ({} of {} failed) vs during the one statement ({} of {})",
                w_ours.failures, w_ours.requests, w_floor.failures, w_floor.requests
            ),
            w_ours.max_ms,
            Some(w_floor.max_ms),
            "ms",
            "far below 1x",
        ));
    }
    Ok(figures)
}

/// When the recipe's migration and the one statement ran, in ms on the
/// instruments' timeline (from, to).
struct Both {
    ours: (f64, f64),
    floor: (f64, f64),
}

/// The recipe's migration, then (from the same vacuumed state) the one
/// statement rolled back.
fn time_both(
    database_url: &str,
    scenario: &'static Scenario,
    version: &'static str,
    sql: &str,
    instruments: &crate::instruments::Instruments,
) -> Result<Both, BenchError> {
    let sink = &mut std::io::sink();
    let mut conn = just_before(database_url, scenario, version)?;
    let vacuum = format!("VACUUM ANALYZE {}", scenario.large_table());
    conn.batch_execute(&vacuum)?;
    let start = instruments.now_ms();
    runner::migrate(
        &mut conn,
        scenario,
        Some(version),
        MigrateOptions::default(),
        sink,
    )?;
    let ours = (start, instruments.now_ms());
    let before = scenario.version_before(version);
    runner::migrate(
        &mut conn,
        scenario,
        Some(before),
        MigrateOptions::default(),
        sink,
    )?;
    conn.batch_execute("SET lock_timeout = 0")?;
    conn.batch_execute(&vacuum)?;
    let start = instruments.now_ms();
    conn.batch_execute(&format!("BEGIN; {sql}; ROLLBACK"))?;
    Ok(Both {
        ours,
        floor: (start, instruments.now_ms()),
    })
}
