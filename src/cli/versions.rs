//! `manage demo --versions 13,14,15,16,17,18`: the same demo on every
//! major, one after the other, and one table of what each pattern's risky
//! step and safe path cost on each.
//!
//! A process runs one major (the binaries `--pg` chooses stand for the
//! whole process), so each major's demo is this command again with `--pg
//! MAJOR` and a report directory of its own; the table is read from their
//! reports. Ctrl-C reaches the running demo too (one process group): it
//! writes its report marked interrupted, and no table is written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context as _;

use crate::demo::report::{self, DemoReport};

/// This command's own arguments, without `--versions` and `--report-dir`
/// (each major's run gets its own).
fn arguments_for_one_major() -> Vec<String> {
    let mut kept = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--versions" | "--report-dir" => {
                args.next();
            }
            _ if arg.starts_with("--versions=") || arg.starts_with("--report-dir=") => {}
            _ => kept.push(arg),
        }
    }
    kept
}

pub fn run(majors: &[u32], report_dir: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the manage binary")?;
    let args = arguments_for_one_major();
    let mut runs: Vec<(u32, PathBuf)> = Vec::new();
    let mut failed = Vec::new();
    for &major in majors {
        writeln!(out, "\n=== PostgreSQL {major}")?;
        out.flush()?;
        let dir = major_dir(report_dir, major);
        let status = Command::new(&exe)
            .args(&args)
            .arg("--pg")
            .arg(major.to_string())
            .arg("--report-dir")
            .arg(&dir)
            .status()
            .with_context(|| format!("running the demo on PostgreSQL {major}"))?;
        if status.code() == Some(130) || crate::interrupt::requested() {
            writeln!(
                out,
                "stopped on PostgreSQL {major}: no version table is written"
            )?;
            return Ok(ExitCode::from(130));
        }
        if !status.success() {
            failed.push(major);
        }
        runs.push((major, dir));
    }
    let mut reports = Vec::new();
    for (major, dir) in &runs {
        if let Some(report) = read_report(dir)? {
            reports.push((*major, report));
        }
    }
    let mut table = Vec::new();
    write_table(&mut table, &reports, None)?;
    let file = report_dir.join("versions.md");
    std::fs::write(&file, &table).with_context(|| format!("writing {}", file.display()))?;
    writeln!(out, "\nevery pattern on every major:\n")?;
    out.write_all(&table)?;
    writeln!(out, "table: {}", file.display())?;
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let failed: Vec<String> = failed.iter().map(u32::to_string).collect();
    writeln!(
        out,
        "the demo did not complete on PostgreSQL {} (its own output above says why)",
        failed.join(", ")
    )?;
    Ok(ExitCode::FAILURE)
}

/// Where one major's demo of a `--versions` run writes its report.
fn major_dir(report_dir: &Path, major: u32) -> PathBuf {
    report_dir.join(format!("pg{major}"))
}

/// One major's report in a `--versions` run's directory, if it wrote one.
fn read_report(dir: &Path) -> anyhow::Result<Option<DemoReport>> {
    let file = dir.join("report.json");
    let Ok(bytes) = std::fs::read(&file) else {
        return Ok(None);
    };
    let report = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a demo's report.json", file.display()))?;
    Ok(Some(report))
}

/// Every major's report of a `--versions` run (`pg<MAJOR>/report.json`
/// under `dir`), by major: for `manage docs --versions`. Refused where
/// one was interrupted, or where they are not of one size.
pub fn read_runs(dir: &Path) -> anyhow::Result<Vec<(u32, DemoReport)>> {
    let mut runs = Vec::new();
    for major in crate::majors::SUPPORTED {
        let Some(report) = read_report(&major_dir(dir, major))? else {
            continue;
        };
        if let Some(during) = &report.interrupted {
            anyhow::bail!(
                "{}: PostgreSQL {major}'s demo was interrupted {during}: run `manage demo --versions` to its end first",
                dir.display()
            );
        }
        runs.push((major, report));
    }
    if runs.is_empty() {
        anyhow::bail!(
            "{} holds no pg<MAJOR>/report.json: run `manage demo --versions 13,14,15,16,17,18` first",
            dir.display()
        );
    }
    let sizes: std::collections::BTreeSet<u64> = runs
        .iter()
        .flat_map(|(_, r)| r.projects.iter().map(|p| p.rows))
        .collect();
    if sizes.len() > 1 {
        anyhow::bail!(
            "{}: the majors' reports are not of one run (rows per pattern: {:?})",
            dir.display(),
            sizes
        );
    }
    Ok(runs)
}

/// The line that says where a version table's figures come from.
pub fn provenance(reports: &[(u32, DemoReport)]) -> String {
    let versions: Vec<&str> = reports
        .iter()
        .filter_map(|(_, r)| r.projects.first())
        .map(|p| version(&p.postgres))
        .collect();
    let mut dates: Vec<&str> = reports
        .iter()
        .map(|(_, r)| r.generated_at.split('T').next().unwrap_or(&r.generated_at))
        .collect();
    dates.sort_unstable();
    dates.dedup();
    let rows = reports
        .iter()
        .find_map(|(_, r)| r.projects.first())
        .map_or(0, |p| p.rows);
    let standby = if with_standby(reports) {
        ", each with a standby (`--replica`)"
    } else {
        ""
    };
    format!(
        "`manage demo --versions`, one run on {}: {} rows per pattern, PostgreSQL {}{standby}.",
        dates.join(" to "),
        indicatif::HumanCount(rows),
        versions.join(", ")
    )
}

/// `15.18` of `PostgreSQL 15.18 on x86_64 ...`.
fn version(postgres: &str) -> &str {
    postgres.split_whitespace().nth(1).unwrap_or(postgres)
}

/// Whether the run measured a standby too.
fn with_standby(reports: &[(u32, DemoReport)]) -> bool {
    reports.iter().any(|(_, r)| {
        r.projects
            .iter()
            .any(|p| p.steps.iter().any(|s| s.replica.is_some()))
    })
}

/// The patterns of the run, in the order the first report that has each
/// ran them.
fn patterns(reports: &[(u32, DemoReport)]) -> Vec<&str> {
    let mut projects: Vec<&str> = Vec::new();
    for (_, report) in reports {
        for project in &report.projects {
            if !projects.contains(&project.project.as_str()) {
                projects.push(&project.project);
            }
        }
    }
    projects
}

/// One row per pattern, one column per major: each cell the risky step's
/// longest outage (and its failed requests, where any) against the safe
/// path's: the README's matrix.
pub fn write_matrix(out: &mut dyn Write, reports: &[(u32, DemoReport)]) -> std::io::Result<()> {
    let mut header = vec!["pattern".to_owned()];
    for (major, run) in reports {
        header.push(
            run.projects
                .first()
                .map_or_else(|| major.to_string(), |p| version(&p.postgres).to_owned()),
        );
    }
    writeln!(out, "| {} |", header.join(" | "))?;
    writeln!(out, "|---|{}", "---|".repeat(header.len() - 1))?;
    let side = |s: &report::Side| {
        if s.failed == 0 {
            crate::instruments::duration(s.outage_ms)
        } else {
            format!(
                "{} ({} failed)",
                crate::instruments::duration(s.outage_ms),
                s.failed
            )
        }
    };
    for name in patterns(reports) {
        let mut row = vec![name.to_owned()];
        for (_, run) in reports {
            let cell = run.projects.iter().find(|p| p.project == name).map_or_else(
                || "not run".to_owned(),
                |project| {
                    let (risky, safe) = report::sides(project);
                    format!("{} → {}", side(&risky), side(&safe))
                },
            );
            row.push(cell);
        }
        writeln!(out, "| {} |", row.join(" | "))?;
    }
    writeln!(out)
}

const HEADER: [&str; 9] = [
    "pattern",
    "PostgreSQL",
    "risky step: lock (held)",
    "rewrite",
    "failed requests",
    "longest outage",
    "safe path: lock (held)",
    "failed requests",
    "longest outage",
];

/// The standby's columns, when the demo ran with one (`--replica`).
const STANDBY_HEADER: [&str; 2] = ["standby: risky step", "standby: safe path"];

/// One row per pattern and major, the majors of a pattern together (of
/// one pattern only, where `only` names it).
pub fn write_table(
    out: &mut dyn Write,
    reports: &[(u32, DemoReport)],
    only: Option<&str>,
) -> std::io::Result<()> {
    let with_standby = with_standby(reports);
    let mut header = HEADER.to_vec();
    let mut rule = "|---|---|---|---|---:|---:|---|---:|---:|".to_owned();
    if with_standby {
        header.extend(STANDBY_HEADER);
        rule.push_str("---|---|");
    }
    writeln!(out, "| {} |", header.join(" | "))?;
    writeln!(out, "{rule}")?;
    let names = patterns(reports);
    for name in names.into_iter().filter(|n| only.is_none_or(|o| o == *n)) {
        for (_, run) in reports {
            let Some(project) = run.projects.iter().find(|p| p.project == name) else {
                continue;
            };
            let (risky, safe) = report::sides(project);
            let [risky_lock, risky_failed, risky_outage] = risky.cells();
            let [safe_lock, safe_failed, safe_outage] = safe.cells();
            let rewrote = project
                .steps
                .iter()
                .find(|s| s.kind == report::StepKind::Risky)
                .is_some_and(|s| !s.rewritten.is_empty());
            let mut row = vec![
                name.to_owned(),
                version(&project.postgres).to_owned(),
                risky_lock,
                if rewrote { "yes" } else { "no" }.to_owned(),
                risky_failed,
                risky_outage,
                safe_lock,
                safe_failed,
                safe_outage,
            ];
            if with_standby {
                row.extend([risky.standby_cell(), safe.standby_cell()]);
            }
            writeln!(out, "| {} |", row.join(" | "))?;
        }
    }
    writeln!(out)
}
