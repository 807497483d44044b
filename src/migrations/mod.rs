//! The migration runner behind `manage migrate`, `showmigrations` and
//! `sqlmigrate`.
//!
//! Migrations come from the project's `migrations/` (embedded, see
//! [`embedded`]), and the same `__diesel_schema_migrations` table records
//! them as for the `diesel` CLI, so both tools can be used on one database.
//! Where a scenario asks for it, a migration is swapped for a Rust one
//! ([`RustMigration`]): the batched backfill (0004) and the safe NOT NULL
//! recipe (0005), whose SQL twins in the directory are what the `diesel` CLI
//! runs. [`source::ScenarioMigrations`] is the `MigrationSource<Pg>` for
//! library users; [`runner`] adds Django's semantics on top, and holds
//! [`lock`] (one migrator per database) for each run.

pub mod embedded;
pub mod lock;
pub mod runner;
pub mod source;
pub mod twin;

pub use embedded::SqlFiles;
pub use runner::{MigrateError, MigrateOptions, Target};

use crate::backfill::BackfillSpec;
use crate::safe_ddl::NotNullSpec;

/// A migration `manage` runs from Rust instead of its SQL file.
#[derive(Debug, Clone, Copy)]
pub enum RustMigration {
    /// Batched keyset backfill; the way down clears the column, batched too.
    Backfill {
        specs: &'static [BackfillSpec],
        default_batch_size: u64,
    },
    /// The four-statement NOT NULL recipe; the way down is the SQL file.
    SafeNotNull(&'static [NotNullSpec]),
}
