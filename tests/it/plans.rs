//! The plans the server's list queries really run: index scans at any
//! table size.
//!
//! How the test knows: the server plans each statement once, generically
//! (`plan_cache_mode = force_generic_plan`), so the plan it keeps is the one
//! `EXPLAIN EXECUTE` shows under that setting for the statement diesel sends
//! (taken from the endpoint's own query). A generic plan that knows it wants
//! ten rows costs an index scan at ten index and heap fetches, whatever the
//! table's size, while any full scan grows with the table; so if the plan's
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

/// The generic plan of `sql` (with `args` for its binds), as JSON.
fn generic_plan(conn: &mut PgConnection, sql: &str, args: &str) -> serde_json::Value {
    conn.batch_execute(&format!(
        "DEALLOCATE ALL; SET plan_cache_mode = force_generic_plan; PREPARE q AS {sql}"
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
        let large = case.large;
        // rows in random physical order: the index's correlation near zero
        db.conn()
            .batch_execute(&format!(
                "CREATE TEMP TABLE shuffled AS SELECT * FROM {large} ORDER BY random();
                 TRUNCATE {large}; INSERT INTO {large} SELECT * FROM shuffled; ANALYZE {large};"
            ))
            .unwrap();
        let sql = (scenario.list_large_sql)();
        let mut conn = db.conn();
        let plan = generic_plan(&mut conn, &sql, "");
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
        let guessed = generic_plan(&mut conn, &bound, "(10)");
        assert!(
            guessed["Plan Rows"].as_f64().unwrap() > 1000.0,
            "{}: {guessed}",
            case.project
        );
    }
}
