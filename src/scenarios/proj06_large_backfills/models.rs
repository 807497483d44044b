//! Rows as the endpoints answer them. `balance` is numeric(12,2): the
//! queries render it as text, as Django's `str(Decimal)` does ("20.99").

use diesel::sql_types::{BigInt, Text};

#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName, serde::Serialize)]
pub struct AccountJson {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub balance: String,
}
