//! Integration tests against a real PostgreSQL and a real HTTP server.
//! One binary, so one build and one throwaway cluster for all of them.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

mod backfill;
mod budget;
mod cli;
mod endpoints;
mod lab;
mod localdb;
mod migrations;
mod patterns;
mod plans;
mod rehearse;
mod replicas;
mod safety;
mod support;
