// @generated automatically by Diesel CLI.

diesel::table! {
    large_user (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 20]
        status -> Varchar,
        #[max_length = 20]
        role -> Varchar,
    }
}

diesel::table! {
    small_user (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 20]
        status -> Varchar,
        #[max_length = 20]
        role -> Varchar,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_user, small_user,);
