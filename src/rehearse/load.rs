//! The queries the load runs on the tables the measured migrations touch:
//! what an application does to them. Per table: a read by primary key
//! (`SELECT *`), a read through each of its other indexes (up to three),
//! an insert of a new row, and an update of one row by its key. Keys are
//! sampled from the seeded rows and bound as JSON, so a query keeps working
//! whatever the migration does to the columns' types; new rows take their
//! numbers from a sequence of the rehearsal's own.
//!
//! Writes name the columns the schema requires (NOT NULL without a
//! default), as an application must: a migration that drops or renames
//! one breaks them, as it would break the application. A column the schema
//! lets an application leave out may or may not be used by yours: the
//! load cannot know (`--probe-url` your own application to find out).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

use super::seed::{Seeding, Table};
use crate::db::quote_ident;
use crate::instruments::load::LoadQuery;

/// What the measured migrations are about to do to a table's columns.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// Made NOT NULL: the application writes them already, or the
    /// migration fails in production too.
    pub required: Vec<String>,
    /// Dropped.
    pub dropped: Vec<String>,
}

#[derive(QueryableByName)]
struct Index {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    primary: bool,
}

/// Plain btree indexes on columns (no expressions, no predicates), the
/// primary key first.
const INDEXES: &str = "
SELECT c.relname::text AS name, i.indisprimary AS primary,
       array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(num, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord) AS columns
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
WHERE i.indrelid = $1 AND am.amname = 'btree' AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indisvalid
ORDER BY i.indisprimary DESC, c.relname";

#[derive(QueryableByName)]
struct Sample {
    #[diesel(sql_type = Text)]
    row: String,
}

/// How many keys the load cycles through per query. Enough that a key comes
/// back rarely: with 200, the load's own updates had moved every row it
/// updates to the table's end before the migration started, a whole-table
/// UPDATE reached them last, and its row locks made nobody wait in one run
/// of two (2 M rows).
const KEYS: u32 = 5_000;

/// Keys of `table` to query by, as JSON objects of `columns`: up to
/// [`KEYS`] rows, spread over the table.
fn sample(
    conn: &mut PgConnection,
    table: &Table,
    columns: &[String],
    rows: u64,
) -> QueryResult<Vec<String>> {
    let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    // a full scan and sort is cheap on a small table; a big one is sampled
    let from = if rows > 1_000_000 {
        format!("{} TABLESAMPLE SYSTEM (1)", table.qualified)
    } else {
        table.qualified.clone()
    };
    Ok(diesel::sql_query(format!(
        "SELECT row_to_json(x)::text AS row FROM (SELECT {} FROM {from} ORDER BY random() LIMIT {KEYS}) AS x",
        list.join(", ")
    ))
    .load::<Sample>(conn)?
    .into_iter()
    .map(|s| s.row)
    .collect())
}

/// `(a, b) = (SELECT a, b FROM json_populate_record(NULL::t, $1::json))`.
fn matching(table: &Table, columns: &[String]) -> String {
    let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let list = list.join(", ");
    format!(
        "({list}) = (SELECT {list} FROM json_populate_record(NULL::{}, $1::json))",
        table.qualified
    )
}

/// The load's queries on `table`, its inserts numbered by a sequence
/// created here.
pub fn queries(
    conn: &mut PgConnection,
    table: &Table,
    (seeding, planned, unused): (&Seeding, &Planned, &[String]),
) -> QueryResult<Vec<LoadQuery>> {
    let rows = seeding.rows(table);
    let indexes = diesel::sql_query(INDEXES)
        .bind::<BigInt, _>(table.oid)
        .load::<Index>(conn)?;
    let mut queries = Vec::new();
    let name = &table.name;
    let key = indexes
        .iter()
        .find(|i| i.primary)
        .map(|i| i.columns.clone());
    if let Some(key) = &key {
        let keys = sample(conn, table, key, rows)?;
        queries.push(LoadQuery {
            label: format!("read {name} by key"),
            sql: format!(
                "SELECT * FROM {} WHERE {}",
                table.qualified,
                matching(table, key)
            ),
            values: keys.clone(),
        });
        if let Some(column) = table.updatable(key) {
            let column = quote_ident(column);
            queries.push(LoadQuery {
                label: format!("update {name} by key"),
                sql: format!(
                    "UPDATE {} SET {column} = {column} WHERE {}",
                    table.qualified,
                    matching(table, key)
                ),
                values: keys,
            });
        }
    }
    // a read through an index on a column the migrations drop is one that
    // code deployed before the drop has stopped (or the drop breaks it, as
    // it would break the application: which, the load cannot know); one
    // through an index the user or production says is unused, too
    let kept = |i: &&Index| {
        !i.primary
            && !unused.contains(&i.name)
            && !i.columns.iter().any(|c| planned.dropped.contains(c))
    };
    for index in indexes.iter().filter(kept).take(3) {
        queries.push(LoadQuery {
            label: format!("read {name} by {}", index.name),
            sql: format!(
                "SELECT * FROM {} WHERE {} LIMIT 10",
                table.qualified,
                matching(table, &index.columns)
            ),
            values: sample(conn, table, &index.columns, rows)?,
        });
    }
    if let Some(insert) = insert(conn, table, (seeding, &planned.required))? {
        queries.push(insert);
    }
    Ok(queries)
}

/// An insert of one new row, numbered from a sequence that starts past
/// the seeded rows.
fn insert(
    conn: &mut PgConnection,
    table: &Table,
    (seeding, also): (&Seeding, &[String]),
) -> QueryResult<Option<LoadQuery>> {
    let rows = seeding.rows(table);
    let sequence = format!("risky_migrations.load_{}", table.oid);
    conn.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS risky_migrations; CREATE SEQUENCE IF NOT EXISTS {sequence} START {}",
        rows + 1_000_001
    ))?;
    let rows_from = format!("(SELECT nextval('{sequence}') AS i) AS n");
    // the row goes as JSON, as an application sends untyped values: each
    // field lands in its column by the column's type when the insert runs,
    // so a column whose type a migration changed still takes it (the
    // seeder's own casts are to the types at seeding)
    Ok(seeding.required(table, &rows_from, also).ok().map(|made| LoadQuery {
        label: format!("insert {}", table.name),
        sql: format!(
            "INSERT INTO {t} ({c}){o} SELECT {c} FROM json_populate_record(NULL::{t}, (SELECT row_to_json(made) FROM ({s}) AS made))",
            t = table.qualified,
            c = made.columns,
            o = made.overriding,
            s = made.select
        ),
        values: Vec::new(),
    }))
}
