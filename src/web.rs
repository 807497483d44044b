//! The HTTP server: a scenario's endpoints on actix-web.
//!
//! It routes what the scenario declares ([`crate::scenarios::endpoints`]:
//! for the seeds, `GET /list_small/` and `GET /list_large/` answer the
//! seed's JSON, `POST /large/` inserts a row, the lab's write probe). Database
//! work runs on actix's blocking pool,
//! so a request stuck behind a migration's lock holds a blocking thread, not
//! the event loop: other requests still get their answer or their timeout.
//! Errors are JSON, never database text: 503 when the database is unreachable
//! or a table is missing, 500 otherwise.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, ResponseError, web};
use diesel::PgConnection;
use diesel::result::Error as DieselError;

use crate::db::PgPool;
use crate::pg_error::{self, Condition};
use crate::scenarios::endpoints::{Endpoint, EndpointError, Request, Verb};
use crate::scenarios::{Release, Scenario};

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub scenario: &'static Scenario,
    /// The release of the app's code it runs; the demo deploys by setting it.
    pub release: Release,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the database is unavailable")]
    Unavailable,
    #[error("a table is missing: the database is not migrated (run `manage migrate 0001`)")]
    MissingTable,
    #[error("{0}")]
    BadRequest(String),
    #[error("internal error")]
    Internal,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unavailable | ApiError::MissingTable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "error": self.to_string() }))
    }
}

impl ApiError {
    /// What a failed query means for the client. A missing table is told by
    /// asking for it ([`pg_error::missing_table`]), not by reading the
    /// error, whose words are in the server's language.
    fn from_query(conn: &mut PgConnection, scenario: &Scenario, error: DieselError) -> Self {
        match pg_error::of(&error) {
            Condition::ConnectionLost => ApiError::Unavailable,
            Condition::UndefinedTable => ApiError::MissingTable,
            _ if matches!(error, DieselError::DatabaseError(..))
                && crate::db::missing_table(conn, &scenario.tables()) =>
            {
                ApiError::MissingTable
            }
            _ => {
                tracing::error!(%error, "query failed");
                ApiError::Internal
            }
        }
    }
}

/// Runs `work` with a pooled connection on the blocking pool.
async fn with_conn<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut diesel::PgConnection, &'static Scenario) -> Result<T, EndpointError>
        + Send
        + 'static,
{
    let pool = state.pool.clone();
    let scenario = state.scenario;
    web::block(move || {
        // the pool says once that the database is gone (db::pool)
        let mut conn = pool.get().map_err(|_| ApiError::Unavailable)?;
        // the pooled connection watches the database errors (a lost
        // connection is dropped); a bad request is the handler's own answer
        let outcome = conn.run(|conn| match work(conn, scenario) {
            Ok(value) => Ok(Ok(value)),
            Err(EndpointError::BadRequest(message)) => Ok(Err(ApiError::BadRequest(message))),
            Err(EndpointError::Query(error)) => Err(error),
        });
        outcome.unwrap_or_else(|error| {
            Err(conn
                .run(|conn| Ok(ApiError::from_query(conn, scenario, error)))
                .unwrap_or(ApiError::Unavailable))
        })
    })
    .await
    .map_err(|_| ApiError::Internal)?
}

/// Serves one declared endpoint: its handler on the blocking pool, its
/// reply as JSON, its errors as JSON without database text.
async fn serve(
    state: web::Data<AppState>,
    endpoint: Endpoint,
    query: HashMap<String, String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let arrived = Instant::now();
    let release = state.release.get();
    let (reply, queued) = with_conn(&state, move |conn, scenario| {
        // a blocking thread and a connection are ours from here on: what
        // the request waited for them, requests blocked on a lock held
        let queued = arrived.elapsed();
        let request = Request {
            query: &query,
            body: &body,
            release,
        };
        (endpoint.handler)(scenario, conn, request).map(|reply| (reply, queued))
    })
    .await?;
    let status = StatusCode::from_u16(reply.status).map_err(|_| ApiError::Internal)?;
    Ok(HttpResponse::build(status)
        .content_type(actix_web::http::header::ContentType::json())
        .insert_header((
            crate::instruments::probe::QUEUE_HEADER,
            format!("{:.1}", queued.as_secs_f64() * 1000.0),
        ))
        .body(reply.body))
}

/// The scenario's endpoints, for `App::configure`.
pub fn routes(config: &mut web::ServiceConfig, scenario: &'static Scenario) {
    for endpoint in scenario.endpoints {
        let method = match endpoint.verb {
            Verb::Get => web::get(),
            Verb::Post => web::post(),
        };
        let endpoint = *endpoint;
        config.route(
            endpoint.path,
            method.to(
                move |state: web::Data<AppState>,
                      query: web::Query<HashMap<String, String>>,
                      body: web::Bytes| {
                    serve(state, endpoint, query.into_inner(), body)
                },
            ),
        );
    }
}

/// HTTP workers (event loops): half the cores, at least one. The database
/// work runs on blocking threads beside them, and a local PostgreSQL needs
/// the rest: on 2 cores (`manage bench`), one worker served as many requests
/// as two, with p99 near 2 ms instead of 4-6 ms.
pub fn default_workers() -> usize {
    (crate::db::cores() / 2).max(1)
}

/// Whether a server stops on Ctrl-C itself (`runserver`), or leaves it to
/// the command that runs it in-process (the demo's: a Ctrl-C must stop the
/// measuring first, or the probes would charge the dead server's refusals
/// to the migration running).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    StopOnCtrlC,
    LeftToCaller,
}

/// The path that answers 200 without touching the database: the lab's
/// control probe asks it, so a server that stopped answering is told
/// apart from a table a migration locked.
pub const ALIVE: &str = "/lab/alive/";

/// A server on an already bound listener; `.await` it, or spawn it and stop
/// it through its handle. Requests are logged as Django's dev server does.
pub fn server(
    state: AppState,
    listener: TcpListener,
    workers: usize,
    signals: Signals,
) -> std::io::Result<Server> {
    // database work runs on the blocking pool, and can only go as fast as
    // the connections it waits for: more threads than connections only queue
    let blocking = state.pool.max_size() as usize;
    let scenario = state.scenario;
    let data = web::Data::new(state);
    // the access log costs allocations per request even when filtered out
    let logged = tracing::enabled!(target: "actix_web::middleware::logger", tracing::Level::INFO);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(actix_web::middleware::Condition::new(
                logged,
                actix_web::middleware::Logger::new("\"%r\" %s %b %Dms"),
            ))
            .route(ALIVE, web::get().to(HttpResponse::Ok))
            .configure(|config| routes(config, scenario))
    })
    .workers(workers)
    .worker_max_blocking_threads(blocking.div_ceil(workers.max(1)).max(1));
    let server = match signals {
        Signals::StopOnCtrlC => server,
        Signals::LeftToCaller => server.disable_signals(),
    };
    Ok(server.listen(listener)?.run())
}

/// A server on its own thread and a free loopback port: the demo's, and the
/// tests'. Stopped when dropped.
pub struct Running {
    pub addr: std::net::SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn spawn(state: AppState, workers: usize) -> std::io::Result<Running> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let server = server(state, listener, workers, Signals::LeftToCaller)?;
        let handle = server.handle();
        let thread = std::thread::spawn(move || {
            if let Err(error) = actix_web::rt::System::new().block_on(server) {
                tracing::error!(%error, "the server stopped");
            }
        });
        Ok(Running {
            addr,
            handle,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
