//! `manage probe`: the seed's curl loop, done right and summarized.
//!
//! ```text
//! [12:00:01] Request 3  GET /list_large/  200   12.3 ms  ✅ SUCCESS
//! [12:00:02] Request 4  GET /list_large/  timeout after 3000.0 ms  ❌ BLOCKED/TIMEOUT
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::instruments::probe::{self, Method, NoAnswer, Probe, ProbeConfig, Sample, Summary};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// URL to probe (default: the project's /list_large/, or /large/ with --write)
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds between requests (each request leaves on schedule, even while others hang)
    #[arg(long, value_parser = super::parse_seconds, default_value = "0.5", value_name = "SECONDS")]
    pub interval: Duration,
    /// Seconds before a request counts as failed
    #[arg(long, value_parser = super::parse_seconds, default_value = "3", value_name = "SECONDS")]
    pub timeout: Duration,
    /// Stop after this many requests
    #[arg(long, value_parser = super::parse_positive, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds
    #[arg(long, value_parser = super::parse_seconds, value_name = "SECONDS")]
    pub duration: Option<Duration>,
    /// Send writes (POST {"name": ..}) instead of reads
    #[arg(long)]
    pub write: bool,
}

/// The project a probe without `--url` hits: its port, and its scenario's
/// probe paths.
pub type Target = (u16, &'static crate::scenarios::Scenario);

/// The URL to probe: the flag, or the project's endpoint on its port.
pub fn url(args: &Args, target: Option<Target>) -> anyhow::Result<String> {
    match (&args.url, target) {
        (Some(url), _) => match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
                Ok(url.clone())
            }
            _ => anyhow::bail!(
                "--url {url:?} is not an http:// URL: give it whole, e.g. http://127.0.0.1:8000/list_large/"
            ),
        },
        (None, Some((port, scenario))) => {
            let path = if args.write {
                scenario.write_probe
            } else {
                scenario.read_probe
            };
            Ok(format!("http://127.0.0.1:{port}{path}"))
        }
        (None, None) => anyhow::bail!("no project here to probe: pass --url"),
    }
}

pub fn run(args: Args, target: Option<Target>, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if args.interval.is_zero() {
        anyhow::bail!("--interval must be more than 0");
    }
    let url = url(&args, target)?;
    let method = if args.write {
        Method::Post
    } else {
        Method::Get
    };
    let config = ProbeConfig {
        url: url.clone(),
        method,
        interval: args.interval,
        timeout: args.timeout,
        count: args.count,
        duration: args.duration,
    };
    // Ctrl-C ends the loop and still prints the summary
    crate::interrupt::install();
    let (t0, wall0) = (Instant::now(), chrono::Local::now());
    let (tx, rx) = mpsc::channel();
    let probe = Probe::start(config, t0, Some(tx));
    let path = url::Url::parse(&url)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| url.clone());
    let verb = if args.write { "POST" } else { "GET" };
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(sample) => writeln!(out, "{}", line(&sample, wall0, verb, &path))?,
            Err(mpsc::RecvTimeoutError::Timeout)
                if !crate::interrupt::requested() && !probe.is_finished() => {}
            Err(_) => break,
        }
        out.flush()?;
        if crate::interrupt::requested() {
            break;
        }
    }
    let end_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let samples = probe.finish();
    for sample in rx.try_iter() {
        writeln!(out, "{}", line(&sample, wall0, verb, &path))?;
    }
    let refs: Vec<&Sample> = samples.iter().collect();
    let summary = probe::summarize(&refs, &[], end_ms);
    write_summary(out, &summary)?;
    Ok(if summary.failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn line(sample: &Sample, wall0: chrono::DateTime<chrono::Local>, verb: &str, path: &str) -> String {
    let sent = wall0 + chrono::Duration::milliseconds(sample.sent_ms as i64);
    let outcome = match (sample.status, &sample.error, sample.ok) {
        (Some(status), _, true) => format!("{status}  {:7.1} ms  ✅ SUCCESS", sample.latency_ms),
        (Some(status), _, false) => format!(
            "{status}  {:7.1} ms  ❌ FAILED (HTTP {status})",
            sample.latency_ms
        ),
        (None, Some(NoAnswer::Timeout), _) => format!(
            "timeout after {:.1} ms  ❌ BLOCKED/TIMEOUT",
            sample.latency_ms
        ),
        (None, Some(NoAnswer::Refused), _) => format!(
            "connection refused after {:.1} ms  ❌ DOWN (nothing listens there)",
            sample.latency_ms
        ),
        (None, Some(error), _) => format!("{error} after {:.1} ms  ❌ FAILED", sample.latency_ms),
        (None, None, _) => format!(
            "no answer after {:.1} ms  ❌ BLOCKED/TIMEOUT",
            sample.latency_ms
        ),
    };
    format!(
        "[{}] Request {}  {verb} {path}  {outcome}",
        sent.format("%H:%M:%S"),
        sample.number
    )
}

pub fn write_summary(out: &mut dyn Write, s: &Summary) -> std::io::Result<()> {
    writeln!(out, "--- {} requests, {} failed", s.requests, s.failures)?;
    writeln!(
        out,
        "    max latency {:.1} ms, p99 {:.1} ms",
        s.max_ms, s.p99_ms
    )?;
    writeln!(
        out,
        "    longest outage (a request waiting for any success): {:.1} ms{}",
        s.longest_outage_ms,
        if s.outage_open {
            " (still going at the end)"
        } else {
            ""
        }
    )
}
