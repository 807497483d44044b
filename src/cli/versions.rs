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
        let dir = report_dir.join(format!("pg{major}"));
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
        let file = dir.join("report.json");
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let report: DemoReport = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a demo's report.json", file.display()))?;
        reports.push((*major, report));
    }
    let mut table = Vec::new();
    write_table(&mut table, &reports)?;
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

/// One row per pattern and major, the majors of a pattern together.
pub fn write_table(out: &mut dyn Write, reports: &[(u32, DemoReport)]) -> std::io::Result<()> {
    let with_standby = reports.iter().any(|(_, r)| {
        r.projects
            .iter()
            .any(|p| p.steps.iter().any(|s| s.replica.is_some()))
    });
    let mut header = HEADER.to_vec();
    let mut rule = "|---|---|---|---|---:|---:|---|---:|---:|".to_owned();
    if with_standby {
        header.extend(STANDBY_HEADER);
        rule.push_str("---|---|");
    }
    writeln!(out, "| {} |", header.join(" | "))?;
    writeln!(out, "{rule}")?;
    let mut projects: Vec<&str> = Vec::new();
    for (_, report) in reports {
        for project in &report.projects {
            if !projects.contains(&project.project.as_str()) {
                projects.push(&project.project);
            }
        }
    }
    for name in projects {
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
            let version = project
                .postgres
                .split_whitespace()
                .nth(1)
                .unwrap_or(&project.postgres);
            let mut row = vec![
                name.to_owned(),
                version.to_owned(),
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
