// @generated automatically by Diesel CLI.

diesel::table! {
    large_email (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 255]
        email -> Varchar,
    }
}

diesel::table! {
    small_email (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 255]
        email -> Varchar,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_email, small_email,);
