REINDEX INDEX items_name_idx;
