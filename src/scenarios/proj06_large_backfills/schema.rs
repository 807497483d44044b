// @generated automatically by Diesel CLI.

diesel::table! {
    large_account (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        balance -> Numeric,
        #[max_length = 20]
        tier -> Nullable<Varchar>,
    }
}

diesel::table! {
    small_account (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        balance -> Numeric,
        #[max_length = 20]
        tier -> Nullable<Varchar>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_account, small_account,);
