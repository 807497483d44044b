//! Rows as the endpoints answer them.

/// One element of `{"emails": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, diesel::Queryable, serde::Serialize, serde::Deserialize)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct EmailJson {
    pub id: i64,
    pub name: String,
    pub email: String,
}
