//! Endpoint: `wrk` on `/list_large/` against `pgbench` running the same
//! SELECT on the same cluster.

use std::path::Path;
use std::process::Command;

use diesel::connection::SimpleConnection;

use super::{BenchError, Figure};
use crate::db;
use crate::instruments::Setup;
use crate::scenarios::Scenario;

/// Runs a tool, failing with its stderr.
fn tool(command: &mut Command, what: &str) -> Result<String, BenchError> {
    let output = command.output().map_err(|e| BenchError::Tool {
        what: what.to_owned(),
        detail: format!("cannot run it: {e}"),
    })?;
    if !output.status.success() {
        return Err(BenchError::Tool {
            what: what.to_owned(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `1.23ms`, `850.00us`, `1.02s` in milliseconds.
pub(super) fn wrk_ms(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// Requests/s, p50 and p99 (ms) from `wrk --latency` output.
pub fn parse_wrk(output: &str) -> Option<(f64, f64, f64)> {
    let rate = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|r| r.trim().parse().ok())?;
    let percentile = |p: &str| {
        output.lines().find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(p))
                .then(|| parts.next().and_then(wrk_ms))
                .flatten()
        })
    };
    Some((rate, percentile("50%")?, percentile("99%")?))
}

/// The endpoint under wrk against pgbench running its SELECT; pgbench's
/// What wrk measured of one URL.
struct Wrk {
    rate: f64,
    p50: f64,
    p99: f64,
}

/// wrk -t2 -c16 on `url` for `seconds`, after 2 s of warm-up not counted.
fn wrk(url: &str, seconds: u64, status: &dyn Fn(&str)) -> Result<Wrk, BenchError> {
    let run = |seconds: u64| {
        let duration = format!("-d{seconds}s");
        tool(
            Command::new("wrk").args(["-t2", "-c16", &duration, "--latency", url]),
            "wrk (apt-get install wrk)",
        )
    };
    status(&format!("warming up (wrk for 2 s on {url}, not counted)"));
    run(2)?;
    status(&format!("wrk -t2 -c16 -d{seconds}s on {url}"));
    let (rate, p50, p99) = parse_wrk(&run(seconds)?).ok_or_else(|| BenchError::Tool {
        what: "wrk".to_owned(),
        detail: "unreadable output".to_owned(),
    })?;
    Ok(Wrk { rate, p50, p99 })
}

/// A path the server answers 404 without touching the database: HTTP alone.
const NOT_FOUND: &str = "/lab/no-such-page/";

/// The endpoint under wrk, against its floors: the same server's 404
/// (HTTP alone), pgbench running its SELECT (the database alone), and the
/// two together (`1 / (1/http + 1/db)`: what the endpoint would reach if
/// it added nothing of its own). pgbench's script and logs go to
/// `work_dir` (which exists).
pub fn endpoint(
    database_url: &str,
    scenario: &'static Scenario,
    seconds: u64,
    work_dir: &Path,
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    // a settled table: no autovacuum of the fresh rows during the measurement
    status("VACUUM ANALYZE before measuring");
    db::connect(database_url)?
        .batch_execute(&format!("VACUUM ANALYZE {}", scenario.large_table()))?;
    let server = super::with_server(scenario, Setup::on(database_url))?;
    let path = scenario.read_probe;
    let ours = wrk(&server.url(path).unwrap_or_default(), seconds, status)?;
    let http = wrk(&server.url(NOT_FOUND).unwrap_or_default(), seconds, status)?;
    drop(server);
    let script = work_dir.join("list_large.sql");
    std::fs::write(&script, pgbench_script(&(scenario.list_large_sql)()))?;
    // the chosen major's pgbench, or the system's where it has none
    let program = || {
        crate::localdb::Binaries::client("pgbench").map_err(|e| BenchError::Tool {
            what: "pgbench".to_owned(),
            detail: e.to_string(),
        })
    };
    let pgbench = |mode: &str| {
        status(&format!(
            "pgbench -M {mode} -c16 -j2 -T{seconds} running the same SELECT"
        ));
        run_pgbench(program()?, database_url, mode, seconds, &script, work_dir)
    };
    // the server prepares its statements: the prepared run is its floor;
    // pgbench's default protocol is shown beside it
    let simple = pgbench("simple")?;
    let prepared = pgbench("prepared")?;
    Ok(figures(path, (&ours, &http), (&simple, &prepared)))
}

/// The endpoint's figures against each floor.
fn figures(
    path: &str,
    (ours, http): (&Wrk, &Wrk),
    (simple, prepared): (&Pgbench, &Pgbench),
) -> Vec<Figure> {
    /// Not measured here: the original Django dev server's figure, measured
    /// once on this kind of machine (DESIGN section 9), as a reference.
    const DJANGO_RPS: f64 = 217.0;
    let combined = 1.0 / (1.0 / http.rate + 1.0 / prepared.tps);
    vec![
        Figure::new(
            format!("{path} throughput (wrk -t2 -c16) vs its floor: HTTP and the SELECT together"),
            ours.rate,
            Some(combined),
            "req/s",
            ">= 0.8x",
        ),
        Figure::new(
            format!("  the floor's HTTP: the same server's 404 ({NOT_FOUND}, no database)"),
            http.rate,
            None,
            "req/s",
            "",
        ),
        Figure::new(
            "  the floor's SELECT: pgbench -M prepared -c16 -j2 (the database alone)",
            prepared.tps,
            None,
            "req/s",
            "",
        ),
        Figure::new(
            "  vs pgbench -M simple",
            ours.rate,
            Some(simple.tps),
            "req/s",
            "",
        ),
        Figure::new(
            "  vs Django's runserver (reference, not this run: 217 req/s once measured here)",
            ours.rate,
            Some(DJANGO_RPS),
            "req/s",
            ">= 10x",
        ),
        Figure::new(
            format!("{path} p50 (pgbench: the SELECT alone)"),
            ours.p50,
            prepared.percentile(0.50),
            "ms",
            "",
        ),
        Figure::new(
            format!("{path} p99 (pgbench: the SELECT alone)"),
            ours.p99,
            prepared.percentile(0.99),
            "ms",
            "< 5 ms",
        ),
    ]
}

/// What a pgbench run measured.
struct Pgbench {
    tps: f64,
    /// Every transaction's latency (ms), sorted.
    latencies: Vec<f64>,
}

impl Pgbench {
    /// Nearest rank.
    fn percentile(&self, p: f64) -> Option<f64> {
        let rank = (self.latencies.len() as f64 * p).ceil() as usize;
        self.latencies.get(rank.saturating_sub(1)).copied()
    }
}

/// `pgbench -M <mode> -c16 -j2`, logging one transaction in a hundred for
/// the percentiles: logging every one cost pgbench 40% of its rate.
fn run_pgbench(
    mut pgbench: Command,
    database_url: &str,
    mode: &str,
    seconds: u64,
    script: &Path,
    work_dir: &Path,
) -> Result<Pgbench, BenchError> {
    let is_log = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().starts_with("pgbench_log");
    for old in std::fs::read_dir(work_dir)?
        .filter_map(Result::ok)
        .filter(is_log)
    {
        std::fs::remove_file(old.path())?;
    }
    let out = tool(
        pgbench
            .current_dir(work_dir)
            .args([
                "-n",
                "-M",
                mode,
                "-c16",
                "-j2",
                &format!("-T{seconds}"),
                "-l",
                "--sampling-rate=0.01",
                "--log-prefix=pgbench_log",
                "-f",
            ])
            .arg(script)
            .arg(database_url),
        "pgbench",
    )?;
    let tps: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| BenchError::Tool {
            what: "pgbench".to_owned(),
            detail: "no tps line".to_owned(),
        })?;
    let mut latencies: Vec<f64> = Vec::new();
    for log in std::fs::read_dir(work_dir)?
        .filter_map(Result::ok)
        .filter(is_log)
    {
        // client transaction latency_us ...
        latencies.extend(
            std::fs::read_to_string(log.path())?
                .lines()
                .filter_map(|line| line.split_whitespace().nth(2)?.parse::<f64>().ok())
                .map(|us| us / 1000.0),
        );
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Pgbench { tps, latencies })
}

/// The SQL as a pgbench script. pgbench reads `:name` as a variable even
/// inside a string literal (`'HH24:MI:SS'`), which breaks `-M prepared`; a
/// literal's colons are written `\x3a` in an escape string instead, which
/// PostgreSQL reads as the same text.
pub(super) fn pgbench_script(sql: &str) -> String {
    let mut script = String::with_capacity(sql.len() + 16);
    for (i, part) in sql.split('\'').enumerate() {
        if i > 0 {
            script.push('\'');
        }
        if i % 2 == 1 && part.contains(':') {
            // inside a literal: E'..' takes backslash escapes
            script.insert(script.len() - 1, 'E');
            script.push_str(&part.replace('\\', "\\\\").replace(':', "\\x3a"));
        } else {
            script.push_str(part);
        }
    }
    script.push_str(";\n");
    script
}
