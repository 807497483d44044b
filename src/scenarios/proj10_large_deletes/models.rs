//! Rows as the endpoints answer them.

use diesel::sql_types::{BigInt, Text};

#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName, serde::Serialize)]
pub struct EventJson {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
}
