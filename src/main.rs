//! The web server alone, as the Docker image runs it: `risky_migrations
//! [ADDR:]PORT`, the project and database from `.env` and the environment.
//! `manage runserver` runs the same server.

use std::process::ExitCode;

fn main() -> ExitCode {
    risky_migrations::cli::init_logging(risky_migrations::cli::SERVER_LOG);
    let addrport = std::env::args().nth(1);
    let result = risky_migrations::config::resolve_here(None)
        .map_err(anyhow::Error::from)
        .and_then(|project| {
            let addr = risky_migrations::cli::runserver::parse_addrport(
                addrport.as_deref(),
                project.port,
            )?;
            risky_migrations::cli::runserver::serve(
                &project,
                addr,
                risky_migrations::db::default_pool_size(),
                &mut std::io::stdout(),
            )
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", risky_migrations::cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
