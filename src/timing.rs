//! The seed's timing lines, written to any `Write` so their exact text is
//! tested. Timestamps are local time, as the seeds' Django commands printed.
//!
//! ```text
//! ============================================================
//! [2025-11-07 19:10:00] Starting migration: Changing column type
//! ============================================================
//!
//! [2025-11-07 19:10:00.150] Changing LargeRecord.created_at from VARCHAR to DATETIME...
//! [2025-11-07 19:10:45.892] ✓ LargeRecord column type changed (45.742s)
//! ```
//!
//! The duration after a done line is the lab's addition: measured, not claimed.

use std::io::{self, Write};
use std::time::Duration;

const RULE: &str = "============================================================";

fn stamp_seconds() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn stamp_millis() -> String {
    chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// `HH:MM:SS`, the backfill's batch-line stamp.
pub fn stamp_clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

pub fn banner_start(out: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(
        out,
        "{RULE}\n[{}] Starting migration: {title}\n{RULE}\n",
        stamp_seconds()
    )
}

pub fn banner_end(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{RULE}\n[{}] Migration completed\n{RULE}",
        stamp_seconds()
    )
}

pub fn step_start(out: &mut dyn Write, text: &str) -> io::Result<()> {
    writeln!(out, "[{}] {text}", stamp_millis())?;
    out.flush()
}

pub fn step_done(out: &mut dyn Write, text: &str, took: Duration) -> io::Result<()> {
    writeln!(out, "[{}] {text} ({})\n", stamp_millis(), seconds(took))
}

/// A duration as the lab prints it: `0.004s`, `45.742s`.
pub fn seconds(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// Bytes as MiB, to a tenth: `27.2 MiB`.
pub fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_seed_shape() {
        let mut out = Vec::new();
        banner_start(&mut out, "Changing column type").unwrap();
        step_start(&mut out, "Changing X...").unwrap();
        step_done(&mut out, "✓ X changed", Duration::from_millis(1500)).unwrap();
        banner_end(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let masked = regex::Regex::new(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?\]")
            .unwrap()
            .replace_all(&text, "[T]");
        assert_eq!(
            masked,
            format!(
                "{RULE}\n[T] Starting migration: Changing column type\n{RULE}\n\n[T] Changing X...\n[T] ✓ X changed (1.500s)\n\n{RULE}\n[T] Migration completed\n{RULE}\n"
            )
        );
    }
}
