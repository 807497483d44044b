//! Rows as the endpoints answer them. `created_at` is varchar or timestamptz
//! depending on the migration state, so reads go through SQL that renders it
//! as text in every state rather than through the typed schema.

use diesel::sql_types::{BigInt, Text};

/// One element of `{"records": [...]}`.
#[derive(
    Debug, Clone, PartialEq, Eq, diesel::QueryableByName, serde::Serialize, serde::Deserialize,
)]
pub struct RecordJson {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub created_at: String,
}
