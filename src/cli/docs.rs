//! `manage docs --from target/demo/report.json`: the README's measured
//! tables, rewritten from one recorded run of the demo, so the front
//! page's summary and every pattern's own table come from the same run
//! (where they were once copied by hand, from different runs).
//!
//! A table lives between two markers, which say it is generated:
//!
//! ```markdown
//! <!-- generated:summary by `manage docs` from one `manage demo` run: do not edit -->
//! ...
//! <!-- /generated -->
//! ```
//!
//! `summary` in README.md is the cross-pattern summary; `measured` in a
//! project's README.md is that project's table from the same run.
//!
//! `manage docs --versions target/demo` does the same from one `manage
//! demo --versions` run (its `pg<MAJOR>/report.json`): `versions` in
//! README.md is every pattern against every major, one cell each; in
//! docs/versions.md the whole table; in a project's README.md its rows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::versions;
use crate::demo::report::{self, DemoReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The demo's report.json to take the figures from
    #[arg(long, value_name = "FILE", default_value = "target/demo/report.json")]
    pub from: PathBuf,
    /// Instead: a `manage demo --versions` run's report directory (its
    /// pg<MAJOR>/report.json), for the version tables of the README,
    /// docs/versions.md and every pattern's page
    #[arg(long, value_name = "DIR")]
    pub versions: Option<PathBuf>,
}

const END: &str = "<!-- /generated -->";

/// The opening marker of a generated block named `name`.
fn start(name: &str) -> String {
    let source = match name {
        NAV | PORTS => "the scenario registry",
        VERSIONS => "one `manage demo --versions` run",
        _ => "one `manage demo` run",
    };
    format!("<!-- generated:{name} by `manage docs` from {source}: do not edit -->")
}

/// The blocks of a `--versions` run.
const VERSIONS: &str = "versions";

/// The block at the top of each pattern's page that links the others.
const NAV: &str = "nav";

/// A pattern's links to the lab and to every other pattern, in the
/// registry's order ([`crate::scenarios::all`]).
pub fn nav(project: &str) -> String {
    let others: Vec<String> = crate::scenarios::all()
        .iter()
        .filter(|s| s.project != project)
        .map(|s| {
            let short = s.project.split('_').next().unwrap_or(s.project);
            format!("[{short}](../{}/README.md)", s.project)
        })
        .collect();
    format!(
        "[Back to the lab](../README.md) · the other patterns:\n{}\n",
        others.join(",\n")
    )
}

/// The table of every pattern's ports in docs/commands.md.
const PORTS: &str = "ports";

/// The port in a project's `.env` DATABASE_URL (`...@host:5437/db`).
fn database_port(root: &Path, project: &str) -> anyhow::Result<String> {
    let env_file = root.join(project).join(".env");
    let text = std::fs::read_to_string(&env_file)
        .with_context(|| format!("reading {}", env_file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("DATABASE_URL="))
        .and_then(|url| url.rsplit('@').next())
        .and_then(|host| host.split('/').next())
        .and_then(|host| host.rsplit(':').next())
        .map(str::to_owned)
        .with_context(|| format!("{} names no DATABASE_URL with a port", env_file.display()))
}

/// Every pattern's PostgreSQL port (its `.env`: `localdb start` and its
/// compose file listen there) and server port, in the registry's order.
fn ports(root: &Path) -> anyhow::Result<String> {
    let mut table = String::from(
        "| pattern | PostgreSQL (`localdb start`, docker compose) | `runserver` |\n|---|---:|---:|\n",
    );
    for scenario in crate::scenarios::all() {
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            scenario.project,
            database_port(root, scenario.project)?,
            scenario.port
        ));
    }
    Ok(table)
}

/// Every pattern page's links, and the ports' table, rewritten from the
/// registry.
fn rewrite_from_registry(root: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    rewrite(&root.join("docs/commands.md"), PORTS, &ports(root)?, out)?;
    for scenario in crate::scenarios::all() {
        let page = root.join(scenario.project).join("README.md");
        rewrite(&page, NAV, &nav(scenario.project), out)?;
    }
    Ok(())
}

/// `text` with the block named `name` replaced by `content`, or an error
/// naming the file when it has no such block.
pub fn replace_block(text: &str, name: &str, content: &str, file: &Path) -> anyhow::Result<String> {
    let opening = start(name);
    let begin = text.find(&opening).with_context(|| {
        format!(
            "{} has no block to generate: add the line {opening} and then {END}",
            file.display()
        )
    })?;
    let after = begin + opening.len();
    let end = text[after..]
        .find(END)
        .map(|e| after + e)
        .with_context(|| {
            format!(
                "{}: the block {name} is not closed by {END}",
                file.display()
            )
        })?;
    Ok(format!(
        "{}\n{}\n{}",
        &text[..after],
        content.trim_end(),
        &text[end..]
    ))
}

/// The line that says where the figures come from.
fn provenance(report: &DemoReport) -> String {
    let first = report.projects.first();
    format!(
        "`manage demo`, one run on {}: {} rows per pattern, {}.",
        report
            .generated_at
            .split('T')
            .next()
            .unwrap_or(&report.generated_at),
        first.map_or_else(
            || "no".to_owned(),
            |p| indicatif::HumanCount(p.rows).to_string()
        ),
        first.map_or("", |p| p.postgres.as_str())
    )
}

/// Replaces the block `name` of `file` with `content`, and says whether
/// that changed the file.
fn rewrite(file: &Path, name: &str, content: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let new = replace_block(&text, name, content, file)?;
    let changed = new != text;
    if changed {
        std::fs::write(file, new).with_context(|| format!("writing {}", file.display()))?;
    }
    let said = if changed { "rewritten" } else { "already so" };
    writeln!(out, "{}: {name} {said}", file.display())?;
    Ok(())
}

/// The README's matrix, docs/versions.md's table and each pattern's rows,
/// from one `manage demo --versions` run's reports.
fn rewrite_versions(
    root: &Path,
    reports: &[(u32, DemoReport)],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let provenance = versions::provenance(reports);
    let mut matrix = Vec::new();
    writeln!(
        matrix,
        "{provenance} Each cell: the risky step's longest outage (and its failed requests, where any) → the safe path's.\n"
    )?;
    versions::write_matrix(&mut matrix, reports)?;
    rewrite(
        &root.join("README.md"),
        VERSIONS,
        &String::from_utf8_lossy(&matrix),
        out,
    )?;
    // the whole table, then each pattern's rows on its page
    let pages = crate::scenarios::all()
        .iter()
        .map(|s| (root.join(s.project).join("README.md"), Some(s.project)));
    let ran = |name: &str| {
        reports
            .iter()
            .any(|(_, r)| r.projects.iter().any(|p| p.project == name))
    };
    for (file, only) in std::iter::once((root.join("docs/versions.md"), None)).chain(pages) {
        let mut table = Vec::new();
        writeln!(table, "{provenance}\n")?;
        match only {
            Some(name) if !ran(name) => writeln!(
                table,
                "{name} was not in this run: `manage demo --versions 13,14,15,16,17,18 --project {name}` measures it"
            )?,
            _ => versions::write_table(&mut table, reports, only)?,
        }
        rewrite(&file, VERSIONS, &String::from_utf8_lossy(&table), out)?;
    }
    Ok(())
}

pub fn run(root: &Path, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.versions {
        // read before anything is written: a bad directory changes nothing
        let reports = versions::read_runs(&root.join(dir))?;
        rewrite_from_registry(root, out)?;
        rewrite_versions(root, &reports, out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let from = root.join(&args.from);
    let report: DemoReport = serde_json::from_slice(
        &std::fs::read(&from)
            .with_context(|| format!("reading {} (run `manage demo` first)", from.display()))?,
    )
    .with_context(|| format!("{} is not a demo's report.json", from.display()))?;
    if let Some(during) = &report.interrupted {
        anyhow::bail!(
            "{} is of a demo interrupted {during}: run the demo to its end first",
            from.display()
        );
    }
    rewrite_from_registry(root, out)?;
    let mut summary = Vec::new();
    writeln!(summary, "{}\n", provenance(&report))?;
    report::write_summary_markdown(&mut summary, &report.projects)?;
    let readme = root.join("README.md");
    rewrite(&readme, "summary", &String::from_utf8_lossy(&summary), out)?;
    for project in &report.projects {
        let mut table = Vec::new();
        writeln!(table, "{}\n", provenance(&report))?;
        report::write_markdown(&mut table, project)?;
        let page = root.join(&project.project).join("README.md");
        rewrite(&page, "measured", &String::from_utf8_lossy(&table), out)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_replaced_between_its_markers_and_nothing_else() {
        let text = format!("before\n{}\nold\n{END}\nafter\n", start("summary"));
        let new = replace_block(&text, "summary", "new\n", Path::new("README.md")).unwrap();
        assert_eq!(
            new,
            format!("before\n{}\nnew\n{END}\nafter\n", start("summary"))
        );
        assert!(replace_block("no markers", "summary", "x", Path::new("README.md")).is_err());
    }

    /// Each pattern's page links every other pattern in the registry, so a
    /// new pattern is linked from all of them (`RISKY_MIGRATIONS_BLESS=1
    /// cargo test --lib links` rewrites them; `manage docs` does too).
    #[test]
    fn every_pattern_page_links_the_lab_and_every_other_pattern() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        if std::env::var_os("RISKY_MIGRATIONS_BLESS").is_some() {
            rewrite_from_registry(root, &mut std::io::sink()).unwrap();
        }
        let commands = root.join("docs/commands.md");
        let text = std::fs::read_to_string(&commands).unwrap();
        let generated = replace_block(&text, PORTS, &ports(root).unwrap(), &commands).unwrap();
        assert_eq!(
            text, generated,
            "docs/commands.md's ports differ from the registry's: run `RISKY_MIGRATIONS_BLESS=1 cargo test --lib links`"
        );
        for scenario in crate::scenarios::all() {
            let page = root.join(scenario.project).join("README.md");
            let text = std::fs::read_to_string(&page).unwrap();
            let generated = replace_block(&text, NAV, &nav(scenario.project), &page).unwrap();
            assert_eq!(
                text,
                generated,
                "{}: its links differ from the registry's: run `RISKY_MIGRATIONS_BLESS=1 cargo test --lib links`",
                page.display()
            );
        }
    }
}
