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
/// script and logs go to `work_dir` (which exists).
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
    let url = server.url(path).unwrap_or_default();
    let wrk = |seconds: u64| {
        let duration = format!("-d{seconds}s");
        tool(
            Command::new("wrk").args(["-t2", "-c16", &duration, "--latency", &url]),
            "wrk (apt-get install wrk)",
        )
    };
    status("warming up (wrk for 2 s, not counted)");
    wrk(2)?;
    status(&format!("wrk -t2 -c16 -d{seconds}s on {path}"));
    let out = wrk(seconds)?;
    drop(server);
    let (rate, p50, p99) = parse_wrk(&out).ok_or_else(|| BenchError::Tool {
        what: "wrk".to_owned(),
        detail: "unreadable output".to_owned(),
    })?;

    let script = work_dir.join("list_large.sql");
    std::fs::write(&script, pgbench_script(&(scenario.list_large_sql)()))?;
    let program = crate::localdb::Binaries::find()
        .map_err(|e| BenchError::Tool {
            what: "pgbench".to_owned(),
            detail: e.to_string(),
        })?
        .program("pgbench");
    let pgbench = |mode: &str| {
        status(&format!(
            "pgbench -M {mode} -c16 -j2 -T{seconds} running the same SELECT"
        ));
        run_pgbench(&program, database_url, mode, seconds, &script, work_dir)
    };
    // pgbench's default protocol is the floor the targets name; the server
    // prepares its statements, so the prepared floor is shown beside it
    let simple = pgbench("simple")?;
    let prepared = pgbench("prepared")?;
    /// Not measured here: the original Django dev server's figure, measured
    /// once on this kind of machine (DESIGN section 9), as a reference.
    const DJANGO_RPS: f64 = 217.0;
    Ok(vec![
        Figure::new(
            format!("{path} throughput (wrk -t2 -c16)"),
            rate,
            Some(simple.tps),
            "req/s",
            ">= 0.7x pgbench",
        ),
        Figure::new(
            "  vs pgbench -M prepared",
            rate,
            Some(prepared.tps),
            "req/s",
            "",
        ),
        Figure::new(
            "  vs Django's runserver (reference, not this run: 217 req/s once measured here)",
            rate,
            Some(DJANGO_RPS),
            "req/s",
            ">= 10x",
        ),
        Figure::new(
            format!("{path} p50 (pgbench: the SELECT alone)"),
            p50,
            simple.percentile(0.50),
            "ms",
            "",
        ),
        Figure::new(
            format!("{path} p99 (pgbench: the SELECT alone)"),
            p99,
            simple.percentile(0.99),
            "ms",
            "< 5 ms",
        ),
    ])
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
    program: &Path,
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
        Command::new(program)
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
