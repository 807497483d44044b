//! What the talk's other patterns claim, held to a real server: which
//! requests a step's lock stops and which go on, and the safe recipes'
//! behaviour when a step fails halfway.

use std::time::Duration;

use risky_migrations::instruments::load::Holder;
use risky_migrations::scenarios::proj06_large_backfills::TIER;
use risky_migrations::scenarios::proj10_large_deletes::DEBUG;
use serde_json::json;

use crate::support::{
    PROJ01, PROJ03, PROJ05, PROJ06, PROJ07, PROJ08, PROJ09, PROJ10, TestDb, TestServer,
};

const HOLD: Duration = Duration::from_secs(120);

/// Sessions of this database waiting for a lock.
const WAITING: &str = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                       AND datname = current_database()";

/// POSTs `body` to `url` on a thread: its status, once it answers.
fn post_later(url: String, body: serde_json::Value) -> std::thread::JoinHandle<u16> {
    std::thread::spawn(move || {
        match ureq::post(&url)
            .timeout(Duration::from_secs(60))
            .send_json(body)
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
            Err(e) => panic!("{e}"),
        }
    })
}

const ADD_FK: &str = "ALTER TABLE large_order ADD CONSTRAINT large_order_customer_id_96b7b144_fk_customer_id \
                      FOREIGN KEY (customer_id) REFERENCES customer (id) DEFERRABLE INITIALLY DEFERRED";

/// The original says the foreign key "blocks all queries". Held open
/// mid-migration: the one-statement way stops writes to both tables (orders
/// and the customers they reference) and lets reads through; the safe way's
/// validation stops none of them.
#[test]
fn proj07_the_validating_foreign_key_stops_writes_to_both_tables_and_the_safe_one_none() {
    let db = TestDb::new(PROJ07);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "2000"]);
    let server = TestServer::start(PROJ07.project, &db.url);

    let risky = Holder::run(&db.url, ADD_FK, HOLD).unwrap();
    let (status, body) = server.get("/list_large/");
    assert_eq!((status, body["count"].clone()), (200, json!(10)));
    let customer = post_later(server.url("/customer/"), json!({"name": "Ann"}));
    let order = post_later(server.url("/large/"), json!({"name": "order"}));
    while db.scalar(WAITING) < 2 {
        std::thread::yield_now();
    }
    drop(risky);
    assert_eq!(customer.join().unwrap(), 201);
    assert_eq!(order.join().unwrap(), 201);

    db.exec(
        "ALTER TABLE large_order DROP CONSTRAINT large_order_customer_id_96b7b144_fk_customer_id",
    );
    db.exec(&format!("{ADD_FK} NOT VALID"));
    let validating = Holder::run(
        &db.url,
        "ALTER TABLE large_order VALIDATE CONSTRAINT large_order_customer_id_96b7b144_fk_customer_id",
        HOLD,
    )
    .unwrap();
    // answered while the validation's transaction is open: nothing waits
    assert_eq!(server.post("/customer/", json!({"name": "Bo"})).0, 201);
    assert_eq!(server.post("/large/", json!({"name": "later"})).0, 201);
    assert_eq!(server.get("/list_large/").0, 200);
    assert_eq!(db.scalar(WAITING), 0);
    drop(validating);
}

/// An order whose customer does not exist stops the validation with one
/// line; the constraint stays NOT VALID (new rows are checked), and once
/// the order is mended the next run validates without adding it again.
#[test]
fn proj07_an_orphaned_order_stops_the_validation_and_the_next_run_finishes() {
    let db = TestDb::new(PROJ07);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "500"]);
    db.exec("UPDATE large_order SET customer_id = 999 WHERE id = 77");
    db.manage_ok(&["migrate", "0002", "--fake"]);
    let failed = db.manage(&["migrate", "0003"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("0003_add_customer_fk_safely"), "{stderr}");
    let valid = "SELECT count(*) FROM pg_constraint WHERE conname = 'large_order_customer_id_96b7b144_fk_customer_id' AND convalidated";
    let present = "SELECT count(*) FROM pg_constraint WHERE conname = 'large_order_customer_id_96b7b144_fk_customer_id'";
    assert_eq!((db.scalar(present), db.scalar(valid)), (1, 0));
    // checked from now on, though not yet valid
    let orphan = db.manage(&["seed_large_table", "--large-count", "1"]);
    assert!(orphan.status.success());
    assert!(
        db.try_exec("INSERT INTO large_order (order_number, customer_id, total_amount) VALUES ('x', 12345, 1)")
            .is_err()
    );

    db.exec("UPDATE large_order SET customer_id = 1 WHERE customer_id = 999");
    let out = db.manage_ok(&["migrate", "0003"]);
    assert!(!out.contains("as NOT VALID (no scan)"), "{out}");
    assert!(out.contains("✓ LargeOrder FK validated"), "{out}");
    assert_eq!(db.scalar(valid), 1);
}

/// The index's state: `valid`, `INVALID`, or `absent`.
fn index_state(db: &TestDb, name: &str) -> String {
    db.text(&format!(
        "SELECT coalesce((SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'INVALID' END \
         FROM pg_index WHERE indexrelid = to_regclass('{name}')), 'absent')"
    ))
}

/// proj03 at the state before the large table's concurrent build.
fn proj03_before_0004() -> TestDb {
    let db = TestDb::seeded_past_risky(PROJ03, "5000");
    db.manage_ok(&["migrate", "0003"]);
    db
}

/// A build that failed left an INVALID index under the name: the safe
/// step finds it, drops it, says so, and builds the index it was asked for.
#[test]
fn proj03_an_invalid_index_left_behind_is_dropped_and_built_again() {
    let db = proj03_before_0004();
    // a unique build over a duplicate fails and leaves its index INVALID
    db.exec("INSERT INTO large_email (name, email) VALUES ('LargeUser_1', 'dup@example.com')");
    let failed =
        db.try_exec("CREATE UNIQUE INDEX CONCURRENTLY large_email_email_idx ON large_email (name)");
    assert!(failed.is_err());
    assert_eq!(index_state(&db, "large_email_email_idx"), "INVALID");

    let out = db.manage_ok(&["migrate", "0004"]);
    assert!(
        out.contains("found INVALID index large_email_email_idx"),
        "{out}"
    );
    assert_eq!(index_state(&db, "large_email_email_idx"), "valid");
    assert!(
        db.text("SELECT pg_get_indexdef('large_email_email_idx'::regclass)")
            .ends_with("(email)")
    );
}

/// Behind a transaction that wrote to the table and is still open, the
/// build's wait for it times out: the step drops the INVALID index that
/// leaves, retries, and builds once the transaction ends; no INVALID index
/// is left.
#[test]
fn proj03_a_build_that_times_out_waiting_is_cleaned_up_and_retried() {
    let db = proj03_before_0004();
    let holder = Holder::run(
        &db.url,
        "UPDATE large_email SET name = name WHERE id = 1",
        HOLD,
    )
    .unwrap();
    let (mut migrator, mut lines) = db.spawn(&["migrate", "0004", "--lock-timeout", "0.2"]);
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let retried = line.contains("retry 1/");
        seen.push(line);
        if retried {
            break;
        }
    }
    drop(holder);
    seen.extend(lines);
    assert!(migrator.wait().unwrap().success(), "{seen:#?}");
    let text = seen.join("\n");
    assert!(
        text.contains("CREATE INDEX CONCURRENTLY large_email_email_idx failed"),
        "{text}"
    );
    assert!(
        text.contains("found INVALID index large_email_email_idx"),
        "{text}"
    );
    assert_eq!(index_state(&db, "large_email_email_idx"), "valid");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid"),
        0
    );
}

/// The original's `/list_large/` writes before it reads: an UPDATE of a
/// random row among the first 1,000, then the list, with the id it
/// updated, keys in the original's order. `?read_only=1` only reads.
#[test]
fn proj03_list_large_updates_a_row_then_lists_as_the_original_does() {
    let db = TestDb::new(PROJ03);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "1000"]);
    let server = TestServer::start(PROJ03.project, &db.url);
    let (status, body) = server.get("/list_large/");
    assert_eq!(status, 200, "{body}");
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["emails", "count", "updated_id"]);
    let id = body["updated_id"].as_i64().unwrap();
    assert!((1..=1000).contains(&id));
    assert_eq!(
        db.text(&format!("SELECT email FROM large_email WHERE id = {id}")),
        format!("updated_{id}@example.com")
    );
    let (status, body) = server.get("/list_large/?read_only=1");
    assert_eq!(status, 200);
    assert!(body.get("updated_id").is_none(), "{body}");
}

/// The original says a dropped column breaks the code that still uses it.
/// Under release 1 (which reads and writes legacy_code) the drop fails its
/// search and its writes from then on, the list goes on; the way down
/// brings the column back without its codes. Expand/contract (nullable,
/// release 2, drop) fails nothing.
#[test]
fn proj05_the_drop_breaks_the_release_that_uses_the_column_and_expand_contract_nothing() {
    let db = TestDb::new(PROJ05);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "300"]);
    let server = TestServer::start(PROJ05.project, &db.url);
    let search = "/search_by_legacy_code/?code=LEGACY_0000000001";
    let found = |server: &TestServer| {
        let (status, body) = server.get(search);
        assert_eq!(status, 200, "{body}");
        body["count"].as_i64().unwrap()
    };
    assert_eq!(found(&server), 1);

    db.manage_ok(&["migrate", "0002"]);
    assert_eq!(server.get(search).0, 500);
    assert_eq!(server.post("/large/", json!({"name": "lost"})).0, 500);
    assert_eq!(server.get("/list_large/").0, 200);

    db.manage_ok(&["migrate", "0001"]);
    assert_eq!(found(&server), 0, "the codes do not come back");
    assert_eq!(
        db.scalar("SELECT count(*) FROM large_product WHERE legacy_code = ''"),
        300
    );

    db.manage_ok(&["migrate", "0002", "--fake"]);
    db.manage_ok(&["migrate", "0003"]);
    assert_eq!(server.post("/large/", json!({"name": "release 1"})).0, 201);
    server.release.set(2);
    assert_eq!(server.post("/large/", json!({"name": "release 2"})).0, 201);
    db.manage_ok(&["migrate", "0004"]);
    assert_eq!(server.post("/large/", json!({"name": "after"})).0, 201);
    assert_eq!(found(&server), 0);
    assert_eq!(server.get("/list_large/").0, 200);
}

/// The first line of the plan PostgreSQL gives proj08's search.
fn search_plan(db: &TestDb) -> String {
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    use diesel::RunQueryDsl;
    diesel::sql_query("EXPLAIN SELECT id FROM large_item WHERE sku = 'SKU-0000000001' LIMIT 10")
        .load::<Line>(&mut db.conn())
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// proj08: the risky drop turns release 1's search into a scan of the
/// table; the safe drop refuses while the search still uses the index (its
/// scan count moves), and drops it, concurrently, once release 2 stopped.
#[test]
fn proj08_the_drop_costs_the_search_its_index_and_the_safe_one_waits_until_unused() {
    let db = TestDb::new(PROJ08);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "20000"]);
    diesel::RunQueryDsl::execute(diesel::sql_query("ANALYZE large_item"), &mut db.conn()).unwrap();
    let server = TestServer::start(PROJ08.project, &db.url);
    let search = "/search_by_sku/?sku=SKU-0000000001";
    let (status, body) = server.get(search);
    assert_eq!((status, body["count"].as_i64()), (200, Some(1)), "{body}");
    assert!(
        search_plan(&db).contains("large_item_sku_idx"),
        "{}",
        search_plan(&db)
    );

    db.manage_ok(&["migrate", "0002"]);
    assert!(
        search_plan(&db).contains("Seq Scan"),
        "{}",
        search_plan(&db)
    );
    assert_eq!(server.get(search).1["count"], 1, "slower, still right");
    db.manage_ok(&["migrate", "0001"]);
    assert!(search_plan(&db).contains("large_item_sku_idx"));

    // release 1 searches all along: the safe drop sees the index used
    db.manage_ok(&["migrate", "0002", "--fake"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let searcher = {
        let (stop, url) = (stop.clone(), server.url(search));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                ureq::get(&url).call().expect("the search answers");
            }
        })
    };
    let refused = db.manage(&["migrate", "0003", "--index-watch", "2"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    searcher.join().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("large_item_sku_idx is in use"), "{said}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'large_item_sku_idx'"),
        1
    );

    server.release.set(2);
    assert_eq!(server.get(search).1["count"], 0);
    db.manage_ok(&["migrate", "0003", "--index-watch", "2"]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'large_item_sku_idx'"),
        0
    );
    assert_eq!(server.get("/list_large/").0, 200);
}

/// The file the table's rows are in: a rewrite gives it a new one.
fn relfilenode(db: &TestDb, table: &str) -> i64 {
    db.scalar(&format!(
        "SELECT relfilenode::bigint FROM pg_class WHERE oid = '{table}'::regclass"
    ))
}

/// proj09: the volatile default (Django's `db_default=RandomUUID()`)
/// rewrites the table to give every row a UUID of its own; the safe way
/// never rewrites it, writes get their UUID from the default set at 0003
/// while the backfill gives the old rows theirs, and every row ends with
/// its own.
#[test]
fn proj09_the_volatile_default_rewrites_the_table_and_the_safe_way_never_does() {
    let db = TestDb::new(PROJ09);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "3000"]);
    let server = TestServer::start(PROJ09.project, &db.url);
    let seeded = relfilenode(&db, "large_invoice");
    let distinct = |column: &str| {
        db.scalar(&format!(
            "SELECT count(DISTINCT {column}) FROM large_invoice"
        ))
    };

    db.manage_ok(&["migrate", "0002"]);
    assert_ne!(relfilenode(&db, "large_invoice"), seeded, "rewritten");
    assert_eq!(distinct("public_id"), 3000, "a UUID per row");
    db.manage_ok(&["migrate", "0001"]);

    let before = relfilenode(&db, "large_invoice");
    db.manage_ok(&["migrate", "0002", "--fake"]);
    db.manage_ok(&["migrate", "0003"]);
    assert_eq!(server.post("/large/", json!({"name": "new"})).0, 201);
    assert_eq!(
        db.scalar("SELECT count(public_ref) FROM large_invoice"),
        1,
        "the default fills new rows only"
    );
    db.manage_ok(&["migrate", "0004"]);
    assert_eq!(server.post("/large/", json!({"name": "newer"})).0, 201);
    db.manage_ok(&["migrate", "0005"]);
    assert_eq!(distinct("public_ref"), 3002);
    assert_eq!(relfilenode(&db, "large_invoice"), before, "never rewritten");
    let (status, body) = server.get("/list_large/");
    assert_eq!((status, body["count"].clone()), (200, json!(10)));
}

/// proj06: held open mid-migration, the one `UPDATE` of the table makes a
/// deposit to any account wait (reads go on); a batch of the backfill
/// holds only its own rows, and a deposit to another goes through.
#[test]
fn proj06_one_update_makes_every_deposit_wait_and_a_batch_only_its_own_rows() {
    let db = TestDb::new(PROJ06);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "2000"]);
    let server = TestServer::start(PROJ06.project, &db.url);

    let whole = Holder::run(
        &db.url,
        &format!("UPDATE large_account SET tier = {TIER} WHERE tier IS NULL"),
        HOLD,
    )
    .unwrap();
    assert_eq!(server.get("/list_large/").0, 200);
    let deposit = post_later(server.url("/deposit/?id=1999"), json!({}));
    while db.scalar(WAITING) < 1 {
        std::thread::yield_now();
    }
    drop(whole);
    assert_eq!(deposit.join().unwrap(), 201);

    let batch = Holder::run(
        &db.url,
        &format!("UPDATE large_account SET tier = {TIER} WHERE id > 0 AND id <= 1000"),
        HOLD,
    )
    .unwrap();
    let (status, body) = server.post("/deposit/?id=1999", json!({}));
    assert_eq!((status, body["account"]["id"].clone()), (201, json!(1999)));
    let waiting = post_later(server.url("/deposit/?id=5"), json!({}));
    while db.scalar(WAITING) < 1 {
        std::thread::yield_now();
    }
    drop(batch);
    assert_eq!(waiting.join().unwrap(), 201);
    assert_eq!(
        db.text("SELECT balance::text FROM large_account WHERE id = 1999"),
        "302.81",
        "seeded 300.81, two deposits"
    );
}

/// proj10: held open mid-migration, a batch of the purge holds only its own
/// rows, and the one `DELETE` every row it deletes (an update of any of
/// them waits; here it gives up at its lock_timeout) while reads and
/// inserts go on. VACUUM gives back no page after the interleaved delete,
/// truncates an end of the table that was emptied, and keeps it with
/// `vacuum_truncate = off`.
#[test]
fn proj10_one_delete_locks_every_row_it_deletes_and_vacuum_truncates_only_an_empty_end() {
    let db = TestDb::new(PROJ10);
    db.manage_ok(&["migrate", "0001"]);
    db.manage_ok(&["seed_large_table", "--large-count", "20000"]);
    let pages = || db.scalar("SELECT pg_relation_size('large_event') / 8192");
    let seeded = pages();
    let server = TestServer::start(PROJ10.project, &db.url);
    let touch = |id: i64| {
        db.try_exec(&format!(
            "SET lock_timeout = '300ms'; UPDATE large_event SET name = name WHERE id = {id}"
        ))
    };

    let batch = Holder::run(
        &db.url,
        &format!("DELETE FROM large_event WHERE id > 0 AND id <= 1000 AND {DEBUG}"),
        HOLD,
    )
    .unwrap();
    assert!(touch(500).is_err(), "a row of the batch waits for it");
    assert!(touch(19_998).is_ok(), "a row outside the batch does not");
    drop(batch);

    let whole = Holder::run(
        &db.url,
        &format!("DELETE FROM large_event WHERE {DEBUG}"),
        HOLD,
    )
    .unwrap();
    assert!(touch(19_998).is_err(), "every row the DELETE deletes waits");
    assert!(touch(19_999).is_ok(), "a row it keeps does not");
    assert_eq!(server.get("/list_large/").0, 200);
    assert_eq!(server.post("/large/", json!({"name": "during"})).0, 201);
    drop(whole);
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM large_event WHERE {DEBUG}")),
        0
    );

    db.exec("VACUUM large_event");
    let purged = pages();
    assert!(
        purged >= seeded,
        "interleaved: no page emptied, {purged} of {seeded}"
    );
    db.exec("DELETE FROM large_event WHERE id > 10000");
    db.exec("VACUUM large_event");
    let truncated = pages();
    assert!(
        truncated * 10 < purged * 6,
        "the empty end given back: {truncated} of {purged}"
    );
    db.exec("ALTER TABLE large_event SET (vacuum_truncate = off)");
    db.exec("DELETE FROM large_event WHERE id > 5000");
    db.exec("VACUUM large_event");
    assert_eq!(
        pages(),
        truncated,
        "vacuum_truncate = off keeps the empty end"
    );
}

/// proj01's safe NOT NULL takes the server's own route: on PostgreSQL 18
/// and later a NOT NULL constraint added `NOT VALID` and validated (two
/// statements, the constraint staying as the column's NOT NULL), before 18
/// the CHECK route (four, the check dropped at the end). CI runs it on 13,
/// 15, 16 and 18.
#[test]
fn proj01_the_safe_not_null_takes_the_route_of_the_servers_version() {
    let db = TestDb::at_0003_seeded(PROJ01, "2000");
    db.manage_ok(&["migrate", "0004"]);
    let out = db.manage_ok(&["migrate", "0005"]);
    let version = db.scalar("SELECT current_setting('server_version_num')::bigint");
    let constraints =
        db.scalar("SELECT count(*) FROM pg_constraint WHERE conname = 'large_user_role_not_null'");
    if version >= 180_000 {
        assert!(
            out.contains("NOT NULL role NOT VALID to LargeUser (PostgreSQL 18)"),
            "{out}"
        );
        assert!(!out.contains("Adding CHECK"), "{out}");
        assert_eq!(constraints, 1, "the NOT NULL constraint stays, validated");
    } else {
        assert!(
            out.contains("Adding CHECK (role IS NOT NULL) NOT VALID to LargeUser"),
            "{out}"
        );
        assert_eq!(constraints, 0, "the check dropped at the end");
    }
    assert_eq!(
        db.text("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'large_user' AND column_name = 'role'"),
        "NO"
    );
}
