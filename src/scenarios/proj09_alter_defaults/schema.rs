// @generated automatically by Diesel CLI.

diesel::table! {
    large_invoice (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        amount -> Numeric,
        public_ref -> Uuid,
    }
}

diesel::table! {
    small_invoice (id) {
        id -> Int8,
        #[max_length = 100]
        name -> Varchar,
        amount -> Numeric,
        public_ref -> Uuid,
    }
}

diesel::allow_tables_to_appear_in_same_query!(large_invoice, small_invoice,);
