// @generated automatically by Diesel CLI.

diesel::table! {
    large_item (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 32]
        sku -> Varchar,
        price -> Numeric,
    }
}

diesel::table! {
    small_item (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 32]
        sku -> Varchar,
        price -> Numeric,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_item, small_item,);
