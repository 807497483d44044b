//! The migration runner behind `manage migrate`, `showmigrations` and
//! `sqlmigrate`.
//!
//! Migrations come from the project's `migrations/` (embedded, see
//! [`crate::embedded`]), and the same `__diesel_schema_migrations` table records
//! them as for the `diesel` CLI, so both tools can be used on one database.
//! Where a scenario asks for it, a migration is swapped for a safe recipe
//! run from Rust ([`crate::recipes`]: the batched backfill, the safe NOT
//! NULL), whose SQL twin in the directory is what the `diesel` CLI runs.
//! [`source::ScenarioMigrations`] is the `MigrationSource<Pg>` for library
//! users; [`runner`] adds Django's semantics on top, and holds
//! [`lock`] (one migrator per database) for each run.

pub mod lock;
pub mod owner;
pub mod runner;
pub mod source;
pub mod twin;

pub use crate::embedded::SqlFiles;
pub use runner::{MigrateError, MigrateOptions, Target};

pub use crate::recipes::{Recipe, RunSettings};
