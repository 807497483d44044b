// @generated automatically by Diesel CLI.

diesel::table! {
    customer (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        #[max_length = 254]
        email -> Varchar,
    }
}

diesel::table! {
    large_order (id) {
        id -> Int8,
        #[max_length = 50]
        order_number -> Varchar,
        customer_id -> Int4,
        total_amount -> Numeric,
    }
}

diesel::table! {
    small_order (id) {
        id -> Int8,
        #[max_length = 50]
        order_number -> Varchar,
        customer_id -> Int4,
        total_amount -> Numeric,
    }
}

diesel::allow_tables_to_appear_in_same_query!(customer, large_order, small_order,);
