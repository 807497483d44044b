// @generated automatically by Diesel CLI.

diesel::table! {
    large_product (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        price -> Numeric,
    }
}

diesel::table! {
    small_product (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        price -> Numeric,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_product, small_product,);
