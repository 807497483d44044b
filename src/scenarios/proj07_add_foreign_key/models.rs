//! Rows as the endpoints answer them. `total_amount` is numeric(10,2): the
//! queries render it as text, as Django's `str(Decimal)` does ("101.00").

use diesel::sql_types::{BigInt, Integer, Text};

/// One element of `{"orders": [...]}`.
#[derive(
    Debug, Clone, PartialEq, Eq, diesel::QueryableByName, serde::Serialize, serde::Deserialize,
)]
pub struct OrderJson {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub order_number: String,
    #[diesel(sql_type = Integer)]
    pub customer_id: i32,
    #[diesel(sql_type = Text)]
    pub total_amount: String,
}

/// What `/update_order/` answers, as the original's view does.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
pub struct UpdatedOrder {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub total_amount: String,
}
