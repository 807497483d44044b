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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::demo::report::{self, DemoReport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The demo's report.json to take the figures from
    #[arg(long, value_name = "FILE", default_value = "target/demo/report.json")]
    pub from: PathBuf,
}

const END: &str = "<!-- /generated -->";

/// The opening marker of a generated block named `name`.
fn start(name: &str) -> String {
    format!("<!-- generated:{name} by `manage docs` from one `manage demo` run: do not edit -->")
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

fn rewrite(file: &Path, name: &str, content: &str) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let new = replace_block(&text, name, content, file)?;
    let changed = new != text;
    if changed {
        std::fs::write(file, new).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(changed)
}

pub fn run(root: &Path, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
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
    let mut summary = Vec::new();
    writeln!(summary, "{}\n", provenance(&report))?;
    report::write_summary_markdown(&mut summary, &report.projects)?;
    let readme = root.join("README.md");
    let changed = rewrite(&readme, "summary", &String::from_utf8_lossy(&summary))?;
    writeln!(
        out,
        "{}: {}",
        readme.display(),
        if changed { "rewritten" } else { "already so" }
    )?;
    for project in &report.projects {
        let mut table = Vec::new();
        writeln!(table, "{}\n", provenance(&report))?;
        report::write_markdown(&mut table, project)?;
        let page = root.join(&project.project).join("README.md");
        let changed = rewrite(&page, "measured", &String::from_utf8_lossy(&table))?;
        writeln!(
            out,
            "{}: {}",
            page.display(),
            if changed { "rewritten" } else { "already so" }
        )?;
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
}
