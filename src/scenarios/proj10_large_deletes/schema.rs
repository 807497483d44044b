// @generated automatically by Diesel CLI.

diesel::table! {
    large_event (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 20]
        kind -> Varchar,
    }
}

diesel::table! {
    small_event (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 20]
        kind -> Varchar,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_event, small_event,);
