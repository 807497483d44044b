//! `seed_large_table`: fills the small and the large table by streaming COPY.
//!
//! Rows are written straight into COPY's stream (through a buffer), never
//! collected, so memory stays constant at any row count. Everything happens
//! in one transaction that starts with `TRUNCATE`: an interrupted seed rolls
//! back to the previous data, and because the table was truncated in the same
//! transaction, COPY can `FREEZE` the rows (no later hint-bit rewrite or
//! anti-wraparound vacuum pass over the fresh table). Ids are written
//! explicitly and the identity sequence moved past them once at the end.

use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::time::{Duration, Instant};

use diesel::pg::CopyTarget;
use diesel::prelude::*;
use indicatif::HumanCount;

use crate::db::{self, DbError};
use crate::timing;

/// Writes one row, in COPY's text format, for an id.
pub type RowWriter<'a> = &'a dyn Fn(&mut dyn Write, u64) -> io::Result<()>;

/// Copies the rows of `ids` into a table, one COPY statement.
pub type CopyFn = fn(&mut PgConnection, Range<u64>) -> Result<usize, SeedError>;

/// How many rows a seeded table gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Always this many (the seeds' small tables, a table of customers).
    Fixed(u64),
    /// `--large-count`: the table the lab is about.
    Large,
}

/// A table the seed fills.
#[derive(Debug, Clone, Copy)]
pub struct SeedTable {
    pub table: &'static str,
    /// The model name the lines use, e.g. `LargeRecord`.
    pub label: &'static str,
    pub copy: CopyFn,
    pub rows: Rows,
}

impl SeedTable {
    /// A table that always gets `rows` rows.
    pub const fn fixed(table: &'static str, label: &'static str, copy: CopyFn, rows: u64) -> Self {
        SeedTable {
            table,
            label,
            copy,
            rows: Rows::Fixed(rows),
        }
    }

    /// The table `--large-count` fills.
    pub const fn large(table: &'static str, label: &'static str, copy: CopyFn) -> Self {
        SeedTable {
            table,
            label,
            copy,
            rows: Rows::Large,
        }
    }
}

/// What a scenario seeds, and its defaults (the seed's flags).
#[derive(Debug, Clone, Copy)]
pub struct SeedPlan {
    /// Every table the scenario has, in the order they are filled (a table
    /// before those that reference it); exactly one has [`Rows::Large`].
    pub tables: &'static [SeedTable],
    pub default_large_count: u64,
    pub default_batch_size: u64,
    /// The same large rows from SQL alone (`$1` rows): the floor the
    /// benchmark compares seeding with, as `INSERT INTO .. (columns) <this>`.
    pub floor_columns: &'static str,
    pub floor_select: &'static str,
}

impl SeedPlan {
    /// The table with `--large-count` rows: the one the lab watches.
    pub fn large(&self) -> &SeedTable {
        self.tables
            .iter()
            .find(|t| t.rows == Rows::Large)
            .or(self.tables.last())
            .unwrap_or(&EMPTY)
    }

    pub fn table_names(&self) -> Vec<&'static str> {
        self.tables.iter().map(|t| t.table).collect()
    }
}

/// What [`SeedPlan::large`] answers for a plan without tables.
static EMPTY: SeedTable = SeedTable {
    table: "",
    label: "",
    copy: |_, _| Ok(0),
    rows: Rows::Large,
};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("writing rows: {0}")]
    Io(#[from] io::Error),
    #[error("--batch-size must be at least 1")]
    ZeroBatch,
}

/// The COPY of one id range into `table`'s `target` columns.
pub fn copy_rows<T, C>(
    conn: &mut PgConnection,
    table: T,
    target: C,
    ids: Range<u64>,
    row: RowWriter<'_>,
) -> Result<usize, SeedError>
where
    T: Table,
    C: CopyTarget<Table = T>,
{
    diesel::copy_from(table)
        .from_raw_data(
            target,
            move |sink: &mut dyn Write| -> Result<(), SeedError> {
                let mut buffer = BufWriter::with_capacity(256 * 1024, sink);
                for id in ids.clone() {
                    row(&mut buffer, id)?;
                }
                buffer.flush()?;
                Ok(())
            },
        )
        .with_freeze(true)
        .execute(conn)
}

/// Timing of a seed run, for the report and the benchmarks.
#[derive(Debug, Clone, Copy)]
pub struct SeedReport {
    pub large_rows: u64,
    pub took: Duration,
}

/// Replaces every table's rows with fresh ones: `large_count` in the large
/// table, the fixed count in the others.
pub fn seed(
    conn: &mut PgConnection,
    plan: &SeedPlan,
    large_count: u64,
    batch_size: u64,
    progress: bool,
    out: &mut dyn Write,
) -> Result<SeedReport, SeedError> {
    if batch_size == 0 {
        return Err(SeedError::ZeroBatch);
    }
    let tables = plan.table_names().join(", ");
    db::require_tables(
        conn,
        &plan.table_names(),
        "run `manage migrate 0001` first (seeding works at every state from 0001 on)",
    )?;
    // replacing the rows is the seed's behaviour (the originals' command
    // deletes them first): say what goes before it goes
    let removed = plan
        .tables
        .iter()
        .rev()
        .map(|t| Ok(format!("{} {} rows", present(conn, t.table)?, t.label)))
        .collect::<Result<Vec<_>, SeedError>>()?;
    writeln!(
        out,
        "[{}] Seeding replaces the tables' rows: removing {}",
        timing::stamp_clock(),
        removed.join(" and ")
    )?;
    let started = Instant::now();
    conn.transaction(|conn| -> Result<(), SeedError> {
        diesel::sql_query(format!("TRUNCATE {tables} RESTART IDENTITY")).execute(conn)?;
        for table in plan.tables {
            match table.rows {
                Rows::Fixed(n) => fill(conn, table, n, n.max(1), false, out)?,
                Rows::Large => fill(conn, table, large_count, batch_size, progress, out)?,
            }
        }
        Ok(())
    })?;
    // fresh statistics, so the first queries after seeding plan well
    diesel::sql_query(format!("ANALYZE {tables}")).execute(conn)?;
    let took = started.elapsed();
    writeln!(
        out,
        "Seeded {} {} rows in {} ({} rows/s), peak memory {:.1} MiB",
        HumanCount(large_count),
        plan.large().label,
        timing::seconds(took),
        HumanCount((large_count as f64 / took.as_secs_f64().max(1e-9)) as u64),
        peak_rss_mib()
    )?;
    Ok(SeedReport {
        large_rows: large_count,
        took,
    })
}

/// The rows in `table`, counted exactly up to a million (a count of 100 M
/// rows would take seconds): `2,000,040` or `more than 1,000,000`.
fn present(conn: &mut PgConnection, table: &str) -> Result<String, SeedError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    const CAP: i64 = 1_000_000;
    let n = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM (SELECT 1 FROM {table} LIMIT {}) AS t",
        CAP + 1
    ))
    .get_result::<Count>(conn)?
    .n;
    Ok(if n > CAP {
        format!("more than {}", HumanCount(CAP as u64))
    } else {
        HumanCount(n as u64).to_string()
    })
}

/// What seeding `rows` large rows would take on disk, and what the
/// database's disk has free, where both can be told.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskEstimate {
    pub bytes_per_row: f64,
    pub needed: f64,
    pub free: f64,
}

/// Estimates the disk a seed of `rows` needs (a sample of the plan's own
/// rows, sized by PostgreSQL, plus the line pointer and the primary key's
/// index entry) against what the data directory's disk has free. None when
/// the free space cannot be told: a server on another machine or in a
/// container, or a data directory this process cannot see.
pub fn disk_estimate(
    conn: &mut PgConnection,
    plan: &SeedPlan,
    rows: u64,
) -> QueryResult<Option<DiskEstimate>> {
    #[derive(QueryableByName)]
    struct Sized {
        #[diesel(sql_type = diesel::sql_types::Double)]
        bytes: f64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        data_directory: Option<String>,
    }
    let sized = diesel::sql_query(format!(
        "SELECT coalesce(avg(pg_column_size(t.*)), 0)::float8 AS bytes,
                (SELECT setting FROM pg_settings WHERE name = 'data_directory') AS data_directory
         FROM ({}) AS t",
        plan.floor_select
    ))
    .bind::<diesel::sql_types::BigInt, _>(1000_i64)
    .get_result::<Sized>(conn)?;
    // a heap line pointer, a btree entry of the bigint key with its own
    // pointer, and the pages' free space and headers: about a tenth more
    const PER_ROW: f64 = 4.0 + 20.0;
    let bytes_per_row = (sized.bytes + PER_ROW) * 1.1;
    let free = sized
        .data_directory
        .and_then(|dir| nix::sys::statvfs::statvfs(dir.as_str()).ok())
        .map(|s| s.blocks_available() as f64 * s.fragment_size() as f64);
    Ok(free.map(|free| DiskEstimate {
        bytes_per_row,
        needed: bytes_per_row * rows as f64,
        free,
    }))
}

/// This process's peak resident memory: what "constant memory at any N"
/// is checked by (`manage bench` reads it from this line).
pub fn peak_rss_mib() -> f64 {
    // Linux reports ru_maxrss in KiB
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map_or(0.0, |u| u.max_rss() as f64 / 1024.0)
}

fn fill(
    conn: &mut PgConnection,
    table: &SeedTable,
    count: u64,
    batch_size: u64,
    progress: bool,
    out: &mut dyn Write,
) -> Result<(), SeedError> {
    writeln!(
        out,
        "[{}] Creating {} {} rows in batches of {}...",
        timing::stamp_clock(),
        HumanCount(count),
        table.label,
        HumanCount(batch_size)
    )?;
    out.flush()?;
    let bar = crate::backfill::progress_bar(progress, count);
    let tenth = (count / 10).max(1);
    let mut next_line = tenth;
    let mut start = 1;
    while start <= count {
        let end = start.saturating_add(batch_size).min(count + 1);
        (table.copy)(conn, start..end)?;
        let done = end - 1;
        bar.set_position(done);
        if done >= next_line && done < count {
            let line = format!(
                "[{}] {} / {} {} rows ({}%)",
                timing::stamp_clock(),
                HumanCount(done),
                HumanCount(count),
                table.label,
                done * 100 / count
            );
            bar.suspend(|| writeln!(out, "{line}").and_then(|()| out.flush()))?;
            next_line = (done / tenth + 1) * tenth;
        }
        start = end;
    }
    bar.finish_and_clear();
    // ids were written explicitly: move the identity past them
    let (value, is_called) = if count == 0 {
        (1, false)
    } else {
        (count, true)
    };
    diesel::sql_query(format!(
        "SELECT setval(pg_get_serial_sequence('{}', 'id'), {value}, {is_called})",
        table.table
    ))
    .execute(conn)?;
    writeln!(
        out,
        "[{}] ✓ {} {} rows created",
        timing::stamp_clock(),
        HumanCount(count),
        table.label
    )?;
    Ok(())
}
