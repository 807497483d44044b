//! The SQL files of each project's `migrations/`, embedded at build time by
//! `build.rs`, and the small annotation language `manage` reads in them.
//!
//! The files are what the `diesel` CLI runs, so they stay plain SQL. Comments
//! of two forms let `manage migrate` print the seed's timing lines without a
//! second copy of the SQL:
//!
//! ```sql
//! -- banner: Changing column type
//! -- step: Changing LargeRecord.created_at from VARCHAR to DATETIME... | ✓ LargeRecord column type changed
//! ALTER TABLE large_record ...;
//! ```
//!
//! `banner` titles the migration; each `step` starts a chunk of SQL that is sent
//! on its own, its first text printed before and its second after. SQL before
//! the first step (say `SET LOCAL ...`) is a chunk without lines.

include!(concat!(env!("OUT_DIR"), "/embedded_migrations.rs"));

/// One migration directory: `up.sql`, `down.sql`, and `metadata.toml` if any.
#[derive(Debug)]
pub struct SqlFiles {
    /// The directory name, e.g. `0002_alter_largerecord_created_at_and_more`.
    pub name: &'static str,
    /// The text before the first `_`: what `__diesel_schema_migrations` records.
    pub version: &'static str,
    pub up: &'static str,
    pub down: &'static str,
    pub metadata: Option<&'static str>,
}

impl SqlFiles {
    /// What diesel reads from `metadata.toml`: a file that exists without the
    /// key also means "no transaction" (diesel's own default for a present file).
    pub fn run_in_transaction(&self) -> bool {
        let Some(text) = self.metadata else {
            return true;
        };
        text.lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .filter_map(|l| l.split_once('='))
            .find(|(key, _)| key.trim() == "run_in_transaction")
            .is_some_and(|(_, value)| value.trim() == "true")
    }
}

/// A chunk of SQL sent on its own, with the lines printed around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub start: Option<String>,
    pub done: Option<String>,
    pub sql: String,
}

/// A migration file split at its `-- step:` comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotated {
    pub banner: Option<String>,
    pub chunks: Vec<Chunk>,
}

/// Splits a migration file at its `-- step:` comments (see the module docs).
pub fn annotate(sql: &str) -> Annotated {
    let mut banner = None;
    let mut chunks = vec![Chunk {
        start: None,
        done: None,
        sql: String::new(),
    }];
    for line in sql.lines() {
        let trimmed = line.trim_start();
        if let Some(title) = trimmed.strip_prefix("-- banner:") {
            banner = Some(title.trim().to_owned());
        } else if let Some(step) = trimmed.strip_prefix("-- step:") {
            let (start, done) = step.split_once('|').unwrap_or((step, ""));
            chunks.push(Chunk {
                start: Some(start.trim().to_owned()),
                done: Some(done.trim().to_owned()).filter(|d| !d.is_empty()),
                sql: String::new(),
            });
        } else if let Some(chunk) = chunks.last_mut() {
            chunk.sql.push_str(line);
            chunk.sql.push('\n');
        }
    }
    chunks.retain(|c| c.start.is_some() || has_sql(&c.sql));
    Annotated { banner, chunks }
}

/// Whether a chunk holds anything but comments and blank lines.
fn has_sql(sql: &str) -> bool {
    sql.lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with("--"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_steps_and_keeps_the_preamble() {
        let a = annotate(
            "-- why\n-- banner: Changing type\nSET LOCAL x = 1;\n-- step: Doing A... | ✓ A done\nALTER A;\n-- step: Doing B...\nALTER B;\n",
        );
        assert_eq!(a.banner.as_deref(), Some("Changing type"));
        assert_eq!(a.chunks.len(), 3);
        assert_eq!(a.chunks[0].start, None);
        assert_eq!(a.chunks[0].sql, "-- why\nSET LOCAL x = 1;\n");
        assert_eq!(a.chunks[1].start.as_deref(), Some("Doing A..."));
        assert_eq!(a.chunks[1].done.as_deref(), Some("✓ A done"));
        assert_eq!(a.chunks[1].sql, "ALTER A;\n");
        assert_eq!(a.chunks[2].done, None);
    }

    #[test]
    fn a_comment_only_preamble_is_dropped() {
        let a = annotate("-- just words\n\n-- step: S | D\nSELECT 1;\n");
        assert_eq!(a.chunks.len(), 1);
    }

    #[test]
    fn metadata_is_read_as_diesel_reads_it() {
        let files = |metadata| SqlFiles {
            name: "0001_x",
            version: "0001",
            up: "",
            down: "",
            metadata,
        };
        assert!(files(None).run_in_transaction());
        assert!(!files(Some("run_in_transaction = false\n")).run_in_transaction());
        assert!(files(Some("# c\nrun_in_transaction = true # yes\n")).run_in_transaction());
        assert!(!files(Some("# exists, lacks the key\n")).run_in_transaction());
    }

    #[test]
    fn every_project_has_ordered_unique_versions() {
        for scenario in crate::scenarios::all() {
            let versions: Vec<_> = scenario.migrations().iter().map(|m| m.version).collect();
            let mut sorted = versions.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(versions, sorted);
        }
    }
}
