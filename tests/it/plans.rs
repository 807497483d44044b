//! The plans the server's list queries really run: index scans at any
//! table size.
//!
//! How the test knows: the statement diesel sends (taken from the
//! endpoint's own query) has no parameters, so PostgreSQL plans it once and
//! keeps that generic plan for every execution (the test counts the plans
//! in `pg_prepared_statements`): the one `EXPLAIN EXECUTE` shows. A plan
//! that knows it wants ten rows costs an index scan at ten index and heap
//! fetches, whatever the table's size, while any full scan grows with the
//! table; so if the plan's
//! Limit expects 10 rows and reads the primary key's index on a table whose
//! rows are in random physical order (the index scan's worst statistics),
//! it stays an index scan at 100 M rows too. The same statement with a bound
//! `LIMIT $1` is shown to lose that knowledge (its generic plan guesses a
//! tenth of the table), which is what made proj01's endpoint a full scan at
//! 100 M rows.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use risky_migrations::scenarios;

use crate::support::{CASES, TestDb};

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

#[derive(QueryableByName)]
struct Plans {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    custom: i64,
}

/// The plan `sql` runs with (`args` for its binds) as JSON, prepared in
/// `mode` (`plan_cache_mode`).
fn explain(conn: &mut PgConnection, sql: &str, args: &str, mode: &str) -> serde_json::Value {
    conn.batch_execute(&format!(
        "DEALLOCATE ALL; SET plan_cache_mode = {mode}; PREPARE q AS {sql}"
    ))
    .unwrap();
    let plan = diesel::sql_query(format!("EXPLAIN (FORMAT JSON) EXECUTE q{args}"))
        .get_result::<Plan>(conn)
        .unwrap();
    serde_json::from_str::<serde_json::Value>(&plan.plan).unwrap()[0]["Plan"].clone()
}

fn node_types(plan: &serde_json::Value, into: &mut Vec<String>) {
    into.push(plan["Node Type"].as_str().unwrap_or_default().to_owned());
    for child in plan["Plans"].as_array().into_iter().flatten() {
        node_types(child, into);
    }
}

#[test]
fn the_list_endpoints_plan_is_an_index_scan_that_knows_its_limit() {
    for case in CASES {
        let scenario = scenarios::find(case.project).unwrap();
        let db = TestDb::new(case);
        db.manage_ok(&["migrate", "0001"]);
        db.manage_ok(&["seed_large_table", "--large-count", "30000"]);
        let large = case.large();
        // rows in random physical order: the index's correlation near zero
        db.conn()
            .batch_execute(&format!(
                "CREATE TEMP TABLE shuffled AS SELECT * FROM {large} ORDER BY random();
                 TRUNCATE {large}; INSERT INTO {large} SELECT * FROM shuffled; ANALYZE {large};"
            ))
            .unwrap();
        let sql = (scenario.list_large_sql)();
        let mut conn = db.conn();
        let plan = explain(&mut conn, &sql, "", "auto");
        // executed as the server executes it, it is planned once, generically
        // (PostgreSQL 14+ counts the plans; 13 does not say)
        for _ in 0..6 {
            conn.batch_execute("EXECUTE q").unwrap();
        }
        if db.scalar("current_setting('server_version_num')::int") >= 140000 {
            let counted = diesel::sql_query(
                "SELECT generic_plans AS generic, custom_plans AS custom FROM pg_prepared_statements WHERE name = 'q'",
            )
            .get_result::<Plans>(&mut conn)
            .unwrap();
            assert_eq!(counted.custom, 0, "{}: planned per execution", case.project);
            assert!(counted.generic >= 1, "{}", case.project);
        }
        let mut nodes = Vec::new();
        node_types(&plan, &mut nodes);
        assert_eq!(plan["Node Type"], "Limit", "{}: {plan}", case.project);
        assert_eq!(plan["Plan Rows"], 10, "{}: {plan}", case.project);
        assert!(
            nodes.iter().any(|n| n == "Index Scan")
                && !nodes.iter().any(|n| n.contains("Seq Scan")),
            "{}: {nodes:?} for {sql}",
            case.project
        );

        // the premise: a bound limit leaves the generic plan guessing
        let bound = sql.replace("LIMIT 10", "LIMIT $1");
        assert_ne!(bound, sql, "the endpoint's SQL ends with its limit: {sql}");
        let guessed = explain(&mut conn, &bound, "(10)", "force_generic_plan");
        assert!(
            guessed["Plan Rows"].as_f64().unwrap() > 1000.0,
            "{}: {guessed}",
            case.project
        );
    }
}
