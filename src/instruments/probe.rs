//! The probe: the seeds' curl loop done right.
//!
//! Requests leave on a fixed schedule (one every interval, each on its own
//! thread), so a request stuck behind a lock does not delay the next ones and
//! an outage is sampled all along. Each request has a timeout; anything but the
//! expected status (200 for GET, 201 for POST) counts as a failure. The
//! summary's longest outage is, over all requests, the longest a request had
//! to wait from being sent until *some* request succeeded: a few ms when all
//! is well, the whole blocking time when the table is locked, however the
//! failures look (hangs, timeouts, errors).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// The status that counts as success.
    pub fn expected(self) -> u16 {
        match self {
            Method::Get => 200,
            Method::Post => 201,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub url: String,
    pub method: Method,
    pub interval: Duration,
    pub timeout: Duration,
    /// Stop after this many requests.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
}

impl ProbeConfig {
    /// A probe that runs until it is finished.
    pub fn until_stopped(
        url: String,
        method: Method,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        ProbeConfig {
            url,
            method,
            interval,
            timeout,
            count: None,
            duration: None,
        }
    }
}

/// One request, on the lab's common timeline (ms since its start).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub number: u64,
    pub sent_ms: f64,
    pub latency_ms: f64,
    /// How long the server says the request waited for a worker with a
    /// database connection (`X-Queue-Ms`), when it says.
    #[serde(default)]
    pub queue_ms: Option<f64>,
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    /// Why there was no answer.
    pub error: Option<NoAnswer>,
    /// For writes: the id the server acknowledged.
    pub id: Option<i64>,
    pub ok: bool,
}

/// Why a request got no HTTP answer, told by ureq's error kind and the
/// I/O error under it, not by their words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum NoAnswer {
    /// No answer within the timeout: the server is up but stuck (a request
    /// queued behind a lock looks like this).
    Timeout,
    /// Nobody accepted the connection: the server is down or not there.
    Refused,
    Other(String),
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::Timeout => f.write_str("timeout"),
            NoAnswer::Refused => f.write_str("connection refused"),
            NoAnswer::Other(text) => f.write_str(text),
        }
    }
}

/// report.json keeps the text it always had (`"timeout"`).
impl From<NoAnswer> for String {
    fn from(no_answer: NoAnswer) -> String {
        no_answer.to_string()
    }
}

impl From<String> for NoAnswer {
    fn from(text: String) -> NoAnswer {
        match text.as_str() {
            "timeout" => NoAnswer::Timeout,
            "connection refused" => NoAnswer::Refused,
            _ => NoAnswer::Other(text),
        }
    }
}

impl Sample {
    pub fn done_ms(&self) -> f64 {
        self.sent_ms + self.latency_ms
    }
}

/// The response header in which the lab's server says how long a request
/// waited for a worker with a database connection, in ms.
pub const QUEUE_HEADER: &str = "x-queue-ms";

/// What a run of requests came to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: usize,
    pub failures: usize,
    pub max_ms: f64,
    pub p99_ms: f64,
    /// The longest a request waited, from being sent, for any success.
    pub longest_outage_ms: f64,
    /// Whether that outage was still going on at the end.
    pub outage_open: bool,
    /// The longest a request waited in the server for a worker with a
    /// database connection, before its handler ran (the lab's server says
    /// so in `X-Queue-Ms`).
    #[serde(default)]
    pub max_queue_ms: f64,
}

/// The samples of requests in flight at some time in `[from, to]` (ms).
pub fn during(samples: &[Sample], (from, to): (f64, f64)) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.sent_ms <= to && s.done_ms() >= from)
        .collect()
}

/// What the requests in flight in `[from, to]` came to, an outage still
/// open at `to` counted to it.
pub fn summarize_during(samples: &[Sample], window: (f64, f64)) -> Summary {
    summarize(&during(samples, window), &[], window.1)
}

/// Summarizes samples; `end_ms` closes an outage still open at the end, and
/// `later` are samples after the window that can end an outage inside it.
pub fn summarize(samples: &[&Sample], later: &[&Sample], end_ms: f64) -> Summary {
    let mut latencies: Vec<f64> = samples.iter().map(|s| s.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let p99_ms = match latencies.len() {
        0 => 0.0,
        n => latencies[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1],
    };
    let mut successes: Vec<f64> = samples
        .iter()
        .chain(later)
        .filter(|s| s.ok)
        .map(|s| s.done_ms())
        .collect();
    successes.sort_by(f64::total_cmp);
    let (mut longest_outage_ms, mut outage_open) = (0.0_f64, false);
    for sample in samples {
        let first = successes.partition_point(|done| *done < sample.sent_ms);
        let (waited, open) = match successes.get(first) {
            Some(done) => (done - sample.sent_ms, false),
            None => (end_ms - sample.sent_ms, true),
        };
        if waited > longest_outage_ms {
            longest_outage_ms = waited;
            outage_open = open;
        }
    }
    Summary {
        requests: samples.len(),
        failures: samples.iter().filter(|s| !s.ok).count(),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        p99_ms,
        longest_outage_ms,
        outage_open,
        max_queue_ms: samples
            .iter()
            .filter_map(|s| s.queue_ms)
            .fold(0.0, f64::max),
    }
}

/// A probe running in the background; dropped, it stops sending.
pub struct Probe {
    stop: Arc<AtomicBool>,
    /// Requests that failed so far: what a watcher reads while it runs.
    failed: Arc<AtomicU64>,
    handle: Option<JoinHandle<Vec<Sample>>>,
}

impl Probe {
    /// Starts sending; samples are timed from `t0`, and each one is also sent
    /// to `live` as it completes (for printing), if given.
    pub fn start(config: ProbeConfig, t0: Instant, live: Option<mpsc::Sender<Sample>>) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let (stopping, failing) = (Arc::clone(&stop), Arc::clone(&failed));
        let handle = std::thread::spawn(move || schedule(&config, t0, (&stopping, &failing), live));
        Probe {
            stop,
            failed,
            handle: Some(handle),
        }
    }

    /// Whether it stopped by itself (count or duration reached).
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// How many of its requests have failed so far.
    pub fn failures_so_far(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Waits until it stops by itself (its count or duration reached), then
    /// returns every sample in the order they were sent.
    pub fn finish_when_done(mut self) -> Vec<Sample> {
        self.join()
    }

    /// Stops sending, waits for the requests in flight, and returns every
    /// sample in the order they were sent.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    fn join(&mut self) -> Vec<Sample> {
        self.handle
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn schedule(
    config: &ProbeConfig,
    t0: Instant,
    (stop, failed): (&AtomicBool, &AtomicU64),
    live: Option<mpsc::Sender<Sample>>,
) -> Vec<Sample> {
    let agent = ureq::AgentBuilder::new().timeout(config.timeout).build();
    let (tx, rx) = mpsc::channel();
    let mut samples = Vec::new();
    let collect = |samples: &mut Vec<Sample>, sample: Sample| {
        if !sample.ok {
            failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(live) = &live {
            let _ = live.send(sample.clone());
        }
        samples.push(sample);
    };
    let started = Instant::now();
    let mut in_flight = Vec::new();
    let mut number = 0;
    while !stop.load(Ordering::Relaxed)
        && config.count.is_none_or(|c| number < c)
        && config.duration.is_none_or(|d| started.elapsed() < d)
    {
        number += 1;
        let (agent, tx, url, method) =
            (agent.clone(), tx.clone(), config.url.clone(), config.method);
        in_flight.push(std::thread::spawn(move || {
            let _ = tx.send(send(&agent, &url, method, number, t0));
        }));
        in_flight.retain(|h| !h.is_finished());
        // the next tick on the schedule, not `interval` after this request
        let next = started + config.interval.mul_f64(number as f64);
        while !stop.load(Ordering::Relaxed) {
            for sample in rx.try_iter() {
                collect(&mut samples, sample);
            }
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(20)));
        }
    }
    drop(tx);
    for handle in in_flight {
        let _ = handle.join();
    }
    for sample in rx.try_iter() {
        collect(&mut samples, sample);
    }
    samples.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
    samples
}

fn send(agent: &ureq::Agent, url: &str, method: Method, number: u64, t0: Instant) -> Sample {
    let sent = Instant::now();
    let result = match method {
        Method::Get => agent.get(url).call(),
        Method::Post => agent
            .post(url)
            .send_json(serde_json::json!({ "name": format!("probe write {number}") })),
    };
    let latency_ms = sent.elapsed().as_secs_f64() * 1000.0;
    let sent_ms = sent.duration_since(t0).as_secs_f64() * 1000.0;
    let queue_ms = match &result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response
            .header(QUEUE_HEADER)
            .and_then(|v| v.parse::<f64>().ok()),
        Err(_) => None,
    };
    let (status, error, id) = match result {
        Ok(response) => {
            let status = response.status();
            let id = if method == Method::Post {
                response
                    .into_json::<serde_json::Value>()
                    .ok()
                    .and_then(|v| v["id"].as_i64())
            } else {
                // read the body, as a client would, so the connection is reused
                let _ = response.into_string();
                None
            };
            (Some(status), None, id)
        }
        Err(ureq::Error::Status(status, _)) => (Some(status), None, None),
        Err(ureq::Error::Transport(t)) => (None, Some(transport_error(&t)), None),
    };
    let ok = status == Some(method.expected());
    Sample {
        number,
        sent_ms,
        latency_ms,
        queue_ms,
        status,
        error,
        id,
        ok,
    }
}

fn transport_error(error: &ureq::Transport) -> NoAnswer {
    use std::error::Error as _;
    let io_kind = error
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    match (error.kind(), io_kind) {
        (_, Some(std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)) => {
            NoAnswer::Timeout
        }
        (ureq::ErrorKind::ConnectionFailed, Some(std::io::ErrorKind::ConnectionRefused)) => {
            NoAnswer::Refused
        }
        _ => NoAnswer::Other(
            error
                .to_string()
                .lines()
                .next()
                .unwrap_or("transport error")
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(number: u64, sent_ms: f64, latency_ms: f64, ok: bool) -> Sample {
        Sample {
            number,
            sent_ms,
            latency_ms,
            queue_ms: None,
            status: Some(if ok { 200 } else { 500 }),
            error: None,
            id: None,
            ok,
        }
    }

    #[test]
    fn all_well_means_outages_as_short_as_latencies() {
        let samples: Vec<Sample> = (0..100)
            .map(|i| sample(i, i as f64 * 100.0, 2.0 + (i % 10) as f64, true))
            .collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        let s = summarize(&refs, &[], 10_000.0);
        assert_eq!((s.requests, s.failures), (100, 0));
        assert_eq!(s.max_ms, 11.0);
        assert_eq!(s.p99_ms, 11.0);
        assert_eq!(s.longest_outage_ms, 11.0);
        assert!(!s.outage_open);
    }

    #[test]
    fn a_blocked_stretch_is_one_outage_from_the_first_request_caught() {
        // a lock held from 150 to 1,000: requests sent at 200..=900 queue and
        // are all answered when it is released, in order
        let mut samples = Vec::new();
        for i in 0..15u64 {
            let sent = i as f64 * 100.0;
            let latency = if (2..=9).contains(&i) {
                1_000.0 + i as f64 - sent
            } else {
                5.0
            };
            samples.push(sample(i, sent, latency, true));
        }
        let refs: Vec<&Sample> = samples.iter().collect();
        let s = summarize(&refs, &[], 1_500.0);
        // the request sent at 200 waited until 1,002 for any answer
        assert_eq!(s.longest_outage_ms, 802.0);
        assert_eq!(s.max_ms, 802.0);
        assert_eq!(s.failures, 0);
    }

    #[test]
    fn failures_count_and_an_outage_open_at_the_end_runs_to_the_end() {
        let samples = [
            sample(1, 0.0, 3.0, true),
            sample(2, 100.0, 4.0, false),
            sample(3, 200.0, 300.0, false),
        ];
        let refs: Vec<&Sample> = samples.iter().collect();
        let s = summarize(&refs, &[], 1_000.0);
        assert_eq!((s.requests, s.failures), (3, 2));
        assert_eq!(s.longest_outage_ms, 900.0);
        assert!(s.outage_open);
        // a success after the window closes the outage instead
        let after = sample(4, 700.0, 10.0, true);
        let s = summarize(&refs, &[&after], 1_000.0);
        assert_eq!(s.longest_outage_ms, 610.0);
        assert!(!s.outage_open);
    }

    #[test]
    fn p99_is_the_nearest_rank() {
        let samples: Vec<Sample> = (1..=200)
            .map(|i| sample(i, i as f64, i as f64, true))
            .collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        assert_eq!(summarize(&refs, &[], 1_000.0).p99_ms, 198.0);
    }
}
