//! The HTTP endpoints a scenario serves, declared as data: the web layer
//! routes whatever a scenario lists, so a scenario may serve more than the
//! seeds' lists (a search, writes to another table) without touching it.
//!
//! A handler gets a database connection and the request's query and body,
//! and answers a status and a JSON body. It runs on the server's blocking
//! threads; database errors travel up typed, and the web layer turns them
//! into JSON errors without database text.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Deserialize;

use super::{Scenario, Which};

/// The HTTP methods the lab's endpoints use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
        }
    }
}

/// What a handler gets of the request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub query: &'a HashMap<String, String>,
    pub body: &'a [u8],
    /// The release of the app's code the server runs ([`super::Release`]).
    pub release: u32,
}

/// A status and the JSON body to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(body: Vec<u8>) -> Self {
        Reply { status: 200, body }
    }

    pub fn created(body: &serde_json::Value) -> Result<Self, EndpointError> {
        Ok(Reply {
            status: 201,
            body: super::django_json(body)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// 400, with this message.
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

pub type Handler = fn(&Scenario, &mut PgConnection, Request<'_>) -> Result<Reply, EndpointError>;

/// One route.
#[derive(Clone, Copy)]
pub struct Endpoint {
    pub verb: Verb,
    pub path: &'static str,
    pub handler: Handler,
}

/// A request the demo sends all along besides its read and write probes.
#[derive(Debug, Clone, Copy)]
pub struct ExtraProbe {
    pub verb: Verb,
    pub path: &'static str,
    /// For a write: the table its rows land in (every acknowledged one must
    /// be there at the end).
    pub table: Option<&'static str>,
    /// Sent every this many probe intervals (1: as often as the others).
    pub slower: u32,
}

/// `GET /list_large/`: the seed's JSON of the first ten large rows.
pub const LIST_LARGE: Endpoint = Endpoint {
    verb: Verb::Get,
    path: "/list_large/",
    handler: |s, conn, _| Ok(Reply::ok(s.list(conn, Which::Large)?)),
};

/// `GET /list_small/`: the same of the small table.
pub const LIST_SMALL: Endpoint = Endpoint {
    verb: Verb::Get,
    path: "/list_small/",
    handler: |s, conn, _| Ok(Reply::ok(s.list(conn, Which::Small)?)),
};

/// `POST /large/` with `{"name": ".."}` inserts a large row and answers 201
/// with its id (the lab's write probe).
pub const CREATE_LARGE: Endpoint = Endpoint {
    verb: Verb::Post,
    path: "/large/",
    handler: create_large,
};

/// The seeds' endpoints.
pub static SEED_ENDPOINTS: [Endpoint; 3] = [LIST_LARGE, LIST_SMALL, CREATE_LARGE];

#[derive(Debug, Deserialize)]
struct NewRow {
    name: String,
}

/// The seeds' `name varchar(100)`.
const MAX_NAME: usize = 100;

/// The `name` of a `{"name": ".."}` body, 1 to 100 characters.
pub fn new_name(body: &[u8]) -> Result<String, EndpointError> {
    let row: NewRow = serde_json::from_slice(body)
        .map_err(|e| EndpointError::BadRequest(format!("expected {{\"name\": \"..\"}}: {e}")))?;
    if row.name.is_empty() || row.name.chars().count() > MAX_NAME {
        return Err(EndpointError::BadRequest(format!(
            "name must be 1 to {MAX_NAME} characters"
        )));
    }
    Ok(row.name)
}

fn create_large(
    s: &Scenario,
    conn: &mut PgConnection,
    request: Request<'_>,
) -> Result<Reply, EndpointError> {
    let name = new_name(request.body)?;
    let id = s.create_large(conn, &name, request.release)?;
    Reply::created(&serde_json::json!({ "id": id, "name": name }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_query() {
        assert_eq!(new_name(br#"{"name": "x"}"#).unwrap(), "x");
        for bad in [&br#"{"name": ""}"#[..], br#"{"nom": "x"}"#, b"not json"] {
            assert!(matches!(new_name(bad), Err(EndpointError::BadRequest(_))));
        }
        let long = format!(r#"{{"name": "{}"}}"#, "x".repeat(101));
        assert!(new_name(long.as_bytes()).is_err());
    }
}
