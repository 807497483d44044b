//! risky_migrations: a lab for changing big PostgreSQL tables without
//! downtime, a Rust port (Diesel, actix-web) of a Django talk's five risky
//! versus safe migration patterns.
//!
//! Modules, one concern each:
//! - [`config`]: which project, which database (`--project`, `.env`).
//! - [`db`]: connections and the pool, with the session settings the lab needs.
//! - [`pg_error`]: database errors told apart by SQLSTATE, in any server language.
//! - [`localdb`]: a local PostgreSQL from the installed binaries.
//! - [`migrations`]: the runner behind `manage migrate` (Django semantics on
//!   diesel's migration table), and the migrator lock.
//! - [`embedded`]: every project's migration files, embedded at build time.
//! - [`interrupt`]: Ctrl-C during a migration: cancel, roll back what ran, say how to resume.
//! - [`retry`]: short lock timeouts, retried with backoff, naming who held the table.
//! - [`backfill`]: the batched keyset backfill (0004).
//! - [`budget`]: the limits a backfill keeps to between batches (replica
//!   lag, sessions it blocks, a health URL).
//! - [`recipes`]: the safe recipes `manage` runs from Rust, one file each
//!   behind one trait (the batched backfill, NOT NULL through a CHECK, a
//!   foreign key validated apart, an index built concurrently).
//! - [`seed`]: streaming COPY seeding.
//! - [`timing`]: the seed's timing lines.
//! - [`web`]: the HTTP endpoints.
//! - [`instruments`]: what measures, one layer: the lab's server and its
//!   probes, SQL load, the lock monitor, a standby's lag, a held lock,
//!   and the HTML chart; `demo`, `bench` and `rehearse` start them alike.
//! - [`scenarios`]: the projects; they declare, the modules above run.
//! - [`demo`]: `manage demo`, the walkthrough automated and measured, and its report.
//! - [`bench`]: `manage bench`, the hot paths against their floors.
//! - [`rehearse`]: `manage rehearse`, the user's own migrations measured
//!   under load on a database of its own.
//! - [`cli`]: the `manage` subcommands.

pub mod backfill;
pub mod bench;
pub mod budget;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod embedded;
pub mod instruments;
pub mod interrupt;
pub mod localdb;
pub mod majors;
pub mod migrations;
pub mod pg_error;
pub mod recipes;
pub mod rehearse;
pub mod retry;
pub mod scenarios;
pub mod seed;
pub mod timing;
pub mod web;
