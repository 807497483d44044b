//! Instruments: what measuring costs the load it measures. The same SQL
//! load (reads by key and updates of the large table, as `rehearse` runs
//! it) alone, then with every instrument that watches on (the lock monitor
//! every 10 ms; the lab's server, which the control probe asks every
//! 100 ms whether it is alive; the standby's WAL sampler every 50 ms where
//! there is one), each for the same time, in turn: the ratio of their
//! throughputs is the overhead. The demo's read and write probes are not
//! counted: they are load themselves (they query the table), as a
//! user's own endpoint given to `rehearse --probe-url` is.

use std::time::Duration;

use super::{BenchError, Figure};
use crate::db::Databases;
use crate::instruments::load::{LoadQuery, SqlLoadSetup};
use crate::instruments::{Instruments, ReplicaSetup, ServerSetup, Setup};
use crate::scenarios::Scenario;

/// The load: four clients reading and updating rows of the large table by
/// their key.
fn load(scenario: &Scenario, rows: u64) -> SqlLoadSetup {
    let table = scenario.large_table();
    let keys: Vec<String> = (0..500u64)
        .map(|k| (k * 7919 % rows.max(1) + 1).to_string())
        .collect();
    SqlLoadSetup {
        clients: 4,
        queries: vec![
            LoadQuery {
                label: "read by key".to_owned(),
                sql: format!("SELECT * FROM {table} WHERE id = $1::bigint"),
                values: keys.clone(),
            },
            LoadQuery {
                label: "update by key".to_owned(),
                sql: format!("UPDATE {table} SET id = id WHERE id = $1::bigint"),
                values: keys,
            },
        ],
        pause: Duration::ZERO,
        timeout: Duration::from_secs(3),
    }
}

/// Every instrument that watches, as `demo` and `rehearse` start them.
fn every_instrument(scenario: &'static Scenario, databases: Databases<'_>) -> Setup {
    Setup {
        server: Some(ServerSetup {
            scenario,
            connections: 16,
            workers: 2,
            release: crate::scenarios::Release::default(),
        }),
        replica: databases.replica.map(|url| ReplicaSetup {
            url: url.to_owned(),
            table: scenario.large_table().to_owned(),
        }),
        watch: scenario.tables().iter().map(|t| (*t).to_owned()).collect(),
        ..Setup::on(databases.primary)
    }
}

/// Queries per second the load ran with `with` started beside it, from a
/// vacuumed table (the updates leave dead rows that slow the next run).
fn throughput(
    scenario: &Scenario,
    (rows, seconds): (u64, u64),
    with: Setup,
) -> Result<f64, BenchError> {
    use diesel::connection::SimpleConnection;
    crate::db::connect(&with.database_url)?
        .batch_execute(&format!("VACUUM {}", scenario.large_table()))?;
    let instruments = Instruments::start(Setup {
        sql_load: Some(load(scenario, rows)),
        ..with
    })?;
    std::thread::sleep(Duration::from_secs(seconds));
    let measured = instruments.finish();
    let runs = measured
        .sql_load
        .map_or(0, |l| l.all().iter().filter(|s| s.ok).count());
    Ok(runs as f64 / measured.end_ms * 1000.0)
}

/// The load alone against the load with every instrument on, twice each
/// in the order alone, watched, watched, alone (a drift of the machine
/// falls on both alike), `seconds` per run.
pub fn instruments(
    databases: Databases<'_>,
    scenario: &'static Scenario,
    (rows, seconds): (u64, u64),
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    let (mut alone, mut watched) = (0.0, 0.0);
    for (run, on) in [false, true, true, false].into_iter().enumerate() {
        let what = if on {
            "with every instrument on"
        } else {
            "alone"
        };
        status(&format!(
            "run {}/4: the SQL load {what}, {seconds} s",
            run + 1
        ));
        if on {
            watched += throughput(
                scenario,
                (rows, seconds),
                every_instrument(scenario, databases),
            )?;
        } else {
            alone += throughput(scenario, (rows, seconds), Setup::on(databases.primary))?;
        }
    }
    Ok(vec![Figure::new(
        "SQL load with every instrument that watches on (lock monitor, server and its control probe, standby sampler) vs alone",
        watched / 2.0,
        Some(alone / 2.0),
        "queries/s",
        ">= 0.95x (overhead < 5%)",
    )])
}
