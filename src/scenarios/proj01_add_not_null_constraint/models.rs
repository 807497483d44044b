//! Rows as the endpoints answer them.

/// One element of `{"users": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, diesel::Queryable, serde::Serialize, serde::Deserialize)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct UserJson {
    pub id: i64,
    pub name: String,
}
