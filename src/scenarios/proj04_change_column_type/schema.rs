// @generated automatically by Diesel CLI.

diesel::table! {
    large_record (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 50]
        created_at -> Varchar,
        created_at_new -> Timestamptz,
    }
}

diesel::table! {
    small_record (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 50]
        created_at -> Varchar,
        created_at_new -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_record, small_record,);
