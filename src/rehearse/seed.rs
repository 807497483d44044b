//! Rows for tables nobody here wrote, generated from the catalog.
//!
//! Every column gets a value made from the row's number `i`, by its type
//! (integers, numeric, floats, text, varchar(n), char(n), bool, dates,
//! times, timestamps, intervals, uuid, json, jsonb, bytea, inet, arrays of
//! those, enums, domains over them), so key and unique columns are
//! distinct (a text column whose name says it holds a date, an email or a
//! URL holds one); a foreign key takes its parent's value of row
//! `((i - 1) % parent_rows) + 1`, so it points at a row that exists
//! (parents are seeded first; a self-reference points at its own row, or
//! is NULL where it may be). Identity and serial columns get `i` and their
//! sequences move past it; generated columns are left to PostgreSQL. A row
//! a CHECK constraint rejects gets NULL in the checked columns where they
//! allow it, and is left out where they do not.
//!
//! The rows are made by PostgreSQL itself (`INSERT .. SELECT .. FROM
//! generate_series`, a million at a time): the floor `manage bench`
//! measures seeding against, and a CHECK can be evaluated on each row
//! before it is inserted. Triggers are off while seeding, as `pg_restore
//! --disable-triggers` has them (all of them for a superuser; the user's
//! own otherwise, when foreign keys are checked, and hold). A table that
//! cannot be seeded is named with PostgreSQL's error, never skipped
//! silently. `ANALYZE` after.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use crate::db::quote_ident;

/// A table to seed, and what its columns need.
#[derive(Debug, Clone)]
pub struct Table {
    pub oid: i64,
    /// `schema.name`, quoted as SQL needs it.
    pub qualified: String,
    /// The name alone, as users write it.
    pub name: String,
    columns: Vec<Column>,
    checks: Vec<Check>,
    foreign_keys: Vec<ForeignKey>,
    /// The user's expressions of `i` for some columns (`--value`).
    values: HashMap<String, String>,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// `format_type` of the column: what its value is cast to.
    type_sql: String,
    /// The type values are made for: a domain's base type.
    base: String,
    category: String,
    /// Enum labels, where the base type is an enum (or an array of one).
    labels: Vec<String>,
    not_null: bool,
    has_default: bool,
    identity: String,
    generated: bool,
    sequence: Option<String>,
    /// For arrays: the element's base type and category.
    element: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct Check {
    /// `CHECK ((price > (0)::numeric))`, as `pg_get_constraintdef` writes it.
    expression: String,
    columns: Vec<String>,
}

#[derive(Debug, Clone)]
struct ForeignKey {
    columns: Vec<String>,
    parent: i64,
    parent_columns: Vec<String>,
}

/// What seeding did to a table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Seeded {
    pub table: String,
    pub rows: u64,
    /// Why it holds fewer rows than asked, or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = BigInt)]
    rel: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    type_sql: String,
    #[diesel(sql_type = Text)]
    base: String,
    #[diesel(sql_type = Text)]
    category: String,
    #[diesel(sql_type = Nullable<Text>)]
    labels: Option<String>,
    #[diesel(sql_type = Bool)]
    not_null: bool,
    #[diesel(sql_type = Bool)]
    has_default: bool,
    #[diesel(sql_type = Text)]
    identity: String,
    #[diesel(sql_type = Bool)]
    generated: bool,
    #[diesel(sql_type = Nullable<Text>)]
    sequence: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    element: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    element_category: Option<String>,
}

#[derive(QueryableByName)]
struct ConstraintRow {
    #[diesel(sql_type = BigInt)]
    rel: i64,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    definition: String,
    #[diesel(sql_type = Text)]
    columns: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    parent: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    parent_columns: Option<String>,
}

/// The user's tables: ordinary and partitioned ones (partitions are
/// filled through their parent), outside PostgreSQL's and the lab's
/// schemas, Diesel's history aside.
const TABLES: &str = "
SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'risky_migrations')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relname <> '__diesel_schema_migrations'
ORDER BY n.nspname, c.relname";

const COLUMNS: &str = "
SELECT a.attrelid::int8 AS rel, a.attname::text AS name,
       format_type(a.atttypid, a.atttypmod) AS type_sql,
       format_type(base.oid, NULL) AS base, base.typcategory::text AS category,
       (SELECT string_agg(e.enumlabel, E'\\x1f' ORDER BY e.enumsortorder) FROM pg_enum e
         WHERE e.enumtypid = CASE WHEN base.typcategory = 'A' THEN base.typelem ELSE base.oid END) AS labels,
       a.attnotnull AS not_null, a.atthasdef AS has_default, a.attidentity::text AS identity,
       a.attgenerated <> '' AS generated,
       pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname) AS sequence,
       CASE WHEN base.typcategory = 'A' THEN format_type(base.typelem, NULL) END AS element,
       CASE WHEN base.typcategory = 'A' THEN (SELECT typcategory::text FROM pg_type WHERE oid = base.typelem) END
         AS element_category
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type base ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const CONSTRAINTS: &str = "
SELECT con.conrelid::int8 AS rel, con.contype::text AS kind, pg_get_constraintdef(con.oid) AS definition,
       (SELECT string_agg(a.attname, E'\\x1f' ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num) AS columns,
       CASE WHEN con.contype = 'f' THEN con.confrelid::int8 END AS parent,
       (SELECT string_agg(a.attname, E'\\x1f' ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num) AS parent_columns
FROM pg_constraint con
WHERE con.conrelid = ANY($1) AND con.contype IN ('c', 'f')";

fn list(text: Option<String>) -> Vec<String> {
    text.map(|t| t.split('\u{1f}').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A foreign key the measured migrations are about to add: the rows must
/// already hold it, as production's do, or adding it fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedKey {
    pub table: String,
    pub columns: Vec<String>,
    pub parent: String,
    /// Empty: the parent's primary key.
    pub parent_columns: Vec<String>,
}

#[derive(QueryableByName)]
struct KeyColumns {
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    columns: Vec<String>,
}

/// The user's tables and what seeding them needs, the foreign keys the
/// measured migrations add counted as if they were there, and the user's
/// own values (`table.column` to an SQL expression of the row's number `i`).
pub fn tables(
    conn: &mut PgConnection,
    planned: &[PlannedKey],
    values: &BTreeMap<String, String>,
) -> QueryResult<Vec<Table>> {
    let mut tables = catalog_tables(conn)?;
    for (target, expression) in values {
        let Some((table, column)) = target.split_once('.') else {
            continue;
        };
        if let Some(table) = tables.iter_mut().find(|t| t.name == table) {
            table.values.insert(column.to_owned(), expression.clone());
        }
    }
    for key in planned {
        let parent = tables.iter().find(|t| t.name == key.parent).map(|t| t.oid);
        let Some(parent) = parent else { continue };
        let parent_columns = match key.parent_columns.is_empty() {
            false => key.parent_columns.clone(),
            true => diesel::sql_query(
                "SELECT array(SELECT a.attname::text FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(num, ord)
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
                  WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord) AS columns",
            )
            .bind::<BigInt, _>(parent)
            .get_result::<KeyColumns>(conn)?
            .columns,
        };
        if let Some(table) = tables.iter_mut().find(|t| t.name == key.table) {
            table.foreign_keys.push(ForeignKey {
                columns: key.columns.clone(),
                parent,
                parent_columns,
            });
        }
    }
    Ok(order_parents_first(tables))
}

fn catalog_tables(conn: &mut PgConnection) -> QueryResult<Vec<Table>> {
    let rows = diesel::sql_query(TABLES).load::<TableRow>(conn)?;
    let oids: Vec<i64> = rows.iter().map(|t| t.oid).collect();
    let columns = diesel::sql_query(COLUMNS)
        .bind::<diesel::sql_types::Array<BigInt>, _>(&oids)
        .load::<ColumnRow>(conn)?;
    let constraints = diesel::sql_query(CONSTRAINTS)
        .bind::<diesel::sql_types::Array<BigInt>, _>(&oids)
        .load::<ConstraintRow>(conn)?;
    let mut by_oid: BTreeMap<i64, Table> = rows
        .into_iter()
        .map(|t| {
            let table = Table {
                oid: t.oid,
                qualified: format!("{}.{}", quote_ident(&t.schema), quote_ident(&t.name)),
                name: t.name,
                columns: Vec::new(),
                checks: Vec::new(),
                foreign_keys: Vec::new(),
                values: HashMap::new(),
            };
            (t.oid, table)
        })
        .collect();
    for c in columns {
        if let Some(table) = by_oid.get_mut(&c.rel) {
            table.columns.push(Column {
                name: c.name,
                type_sql: c.type_sql,
                base: c.base,
                category: c.category,
                labels: list(c.labels),
                not_null: c.not_null,
                has_default: c.has_default,
                identity: c.identity,
                generated: c.generated,
                sequence: c.sequence,
                element: c.element.zip(c.element_category),
            });
        }
    }
    for c in constraints {
        let Some(table) = by_oid.get_mut(&c.rel) else {
            continue;
        };
        let columns = list(Some(c.columns));
        match (c.kind.as_str(), c.parent) {
            ("c", _) => table.checks.push(Check {
                expression: c
                    .definition
                    .trim_start_matches("CHECK ")
                    .trim_end_matches(" NOT VALID")
                    .to_owned(),
                columns,
            }),
            ("f", Some(parent)) => table.foreign_keys.push(ForeignKey {
                columns,
                parent,
                parent_columns: list(c.parent_columns),
            }),
            _ => {}
        }
    }
    Ok(by_oid.into_values().collect())
}

/// Tables in an order where every parent comes before the tables that
/// reference it (a cycle is broken where it is met: its foreign key gets
/// NULL, see [`value_of`]).
fn order_parents_first(tables: Vec<Table>) -> Vec<Table> {
    let mut left: Vec<Table> = tables;
    let mut ordered: Vec<Table> = Vec::new();
    while !left.is_empty() {
        let placed: Vec<i64> = ordered.iter().map(|t| t.oid).collect();
        let ready = left.iter().position(|t| {
            t.foreign_keys
                .iter()
                .all(|fk| fk.parent == t.oid || placed.contains(&fk.parent))
        });
        // a cycle: take the first one anyway
        let next = left.remove(ready.unwrap_or(0));
        ordered.push(next);
    }
    ordered
}

/// What a value is made for: the column (its table's name and its own
/// make text values that no other table's collide with), and its type.
struct Slot<'a> {
    prefix: String,
    column_name: &'a str,
    base: &'a str,
    category: &'a str,
    labels: &'a [String],
    not_null: bool,
}

/// The SQL value of a column's base type for row `i`, or None for a type
/// the seeder cannot make: a nullable column of a type it does not know
/// stays NULL; a NOT NULL one gets text, which many types read (citext,
/// ltree, ...), and where its type does not, PostgreSQL says why.
fn made(slot: &Slot<'_>, i: &str) -> Option<String> {
    let (column_name, base, category, labels) =
        (slot.column_name, slot.base, slot.category, slot.labels);
    let text = |prefix: &str| format!("'{}_' || ({i})", prefix.replace('\'', "''"));
    Some(match (base, category) {
        ("smallint", _) => format!("(({i}) % 32767)"),
        ("integer" | "bigint" | "oid", _) => format!("({i})"),
        ("real" | "double precision", _) => format!("(({i}) * 1.5)"),
        ("numeric" | "money", _) => format!("(({i}) % 1000)"),
        ("boolean", _) => format!("(({i}) % 2 = 0)"),
        ("date", _) => format!("(date '2020-01-01' + (({i}) % 100000)::int)"),
        ("timestamp without time zone" | "timestamp with time zone", _) => {
            format!("(timestamptz '2020-01-01 00:00:00+00' + ({i}) * interval '1 second')")
        }
        ("time without time zone" | "time with time zone", _) => {
            format!("(time '00:00' + (({i}) % 86400) * interval '1 second')")
        }
        ("interval", _) => format!("(({i}) * interval '1 second')"),
        ("uuid", _) => format!("md5('{}' || ({i}))::uuid", column_name.replace('\'', "''")),
        ("json" | "jsonb", _) => format!("json_build_object('n', ({i}))"),
        ("bytea", _) => format!("decode(md5(({i})::text), 'hex')"),
        ("inet" | "cidr", _) => format!("('10.0.0.0'::inet + (({i}) % 16000000))"),
        ("macaddr", _) => "'08:00:2b:01:02:03'::macaddr".to_owned(),
        ("tsvector", _) => format!("to_tsvector('simple', 'word' || ({i}))"),
        (_, "S") => text_like_its_name(column_name, i).unwrap_or_else(|| text(&slot.prefix)),
        (_, "E") if !labels.is_empty() => {
            let quoted: Vec<String> = labels
                .iter()
                .map(|l| format!("'{}'", l.replace('\'', "''")))
                .collect();
            format!(
                "(ARRAY[{}])[1 + (({i}) % {})]",
                quoted.join(", "),
                labels.len()
            )
        }
        _ if slot.not_null => text(&slot.prefix),
        _ => return None,
    })
}

/// Text that looks like what the column's name says it holds, where the
/// name says: a text column named `created_at` or `birth_date` often
/// holds a timestamp that a later migration converts, an `email` column
/// an address a later one indexes or checks.
fn text_like_its_name(column_name: &str, i: &str) -> Option<String> {
    let name = column_name.to_lowercase();
    if name.ends_with("_at") || name.contains("date") || name.contains("time") {
        Some(format!(
            "to_char(timestamp '2024-01-01 00:00:00' + ({i}) * interval '1 minute', 'YYYY-MM-DD HH24:MI:SS')"
        ))
    } else if name.contains("email") {
        Some(format!("'user' || ({i}) || '@example.com'"))
    } else if name.contains("url") {
        Some(format!("'https://example.com/' || ({i})"))
    } else if name.contains("version") || name.contains("semver") || name == "num" {
        // a release number: major.minor.patch
        Some(format!(
            "(({i}) / 1000000) || '.' || ((({i}) / 1000) % 1000) || '.' || (({i}) % 1000)"
        ))
    } else {
        None
    }
}

/// A column's value for row `i` (SQL text, cast to the column's type), or
/// None where the seeder makes none: left to its default, or NULL.
fn value_of<'a>(
    table: &'a Table,
    column: &'a Column,
    i: &str,
    rows: &HashMap<i64, (u64, Table)>,
) -> Option<String> {
    // the user's own expression of `i` (--value), evaluated for this row
    if let Some(expression) = table.values.get(&column.name) {
        return Some(format!(
            "(SELECT ({expression})::{} FROM (SELECT ({i}) AS i) AS v)",
            column.type_sql
        ));
    }
    let foreign = table.foreign_keys.iter().find_map(|fk| {
        fk.columns
            .iter()
            .position(|c| *c == column.name)
            .map(|at| (fk, at))
    });
    if let Some((fk, at)) = foreign {
        let parent_column = fk.parent_columns.get(at)?;
        if fk.parent == table.oid {
            // a self-reference: its own row, unless it may be NULL
            return (column.not_null)
                .then(|| value_of(table, column_of(table, parent_column)?, i, rows))
                .flatten();
        }
        let (parent_rows, parent) = rows.get(&fk.parent)?;
        if *parent_rows == 0 {
            return None;
        }
        let parent_i = format!("((({i}) - 1) % {parent_rows} + 1)");
        let value = value_of(parent, column_of(parent, parent_column)?, &parent_i, rows)?;
        return Some(format!("({value})::{}", column.type_sql));
    }
    let slot = |base: &'a str, category: &'a str| Slot {
        prefix: format!("{}_{}", table.name, column.name),
        column_name: &column.name,
        base,
        category,
        labels: &column.labels,
        not_null: column.not_null,
    };
    let value = match (&column.element, column.category.as_str()) {
        (Some((element, element_category)), "A") => {
            format!("ARRAY[{}]", made(&slot(element, element_category), i)?)
        }
        _ => made(&slot(&column.base, &column.category), i)?,
    };
    Some(format!("({value})::{}", column.type_sql))
}

/// Why a NOT NULL column without a default gets no value.
fn no_value(table: &Table, column: &Column, rows: &HashMap<i64, (u64, Table)>) -> String {
    let parent = table
        .foreign_keys
        .iter()
        .find(|fk| fk.columns.contains(&column.name))
        .and_then(|fk| rows.get(&fk.parent));
    match parent {
        Some((_, parent)) => format!(
            "column {} references {}, which has no rows to point at",
            column.name, parent.name
        ),
        None => format!(
            "column {} ({}) is NOT NULL without a default, and the seeder makes no value of that type",
            column.name, column.type_sql
        ),
    }
}

fn column_of<'a>(table: &'a Table, name: &str) -> Option<&'a Column> {
    table.columns.iter().find(|c| c.name == name)
}

/// Rows made for a table: the columns they fill, and the SELECT that
/// makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// The columns, quoted, in the order the SELECT gives them.
    pub columns: String,
    pub select: String,
    /// ` OVERRIDING SYSTEM VALUE` where an identity column is `ALWAYS`.
    pub overriding: &'static str,
}

impl Made {
    /// The INSERT of these rows into `table`.
    pub fn insert(&self, table: &Table) -> String {
        format!(
            "INSERT INTO {} ({}){} {}",
            table.qualified, self.columns, self.overriding, self.select
        )
    }
}

/// The rows for `table`, one for each `i` that `rows_from` (a FROM item
/// with a column `i`) gives, or why none can be made (a NOT NULL column
/// the seeder has no value for, and no default).
fn made_rows(
    table: &Table,
    (rows_from, only_required): (&str, Option<&[String]>),
    rows: &HashMap<i64, (u64, Table)>,
) -> Result<Made, String> {
    let mut names = Vec::new();
    let mut values = Vec::new();
    let wanted = |c: &&Column| {
        let required = (c.not_null && !c.has_default && c.identity.is_empty())
            || only_required.is_some_and(|also| also.contains(&c.name));
        !c.generated && (only_required.is_none() || required)
    };
    for column in table.columns.iter().filter(wanted) {
        match value_of(table, column, "i", rows) {
            Some(value) => {
                names.push(quote_ident(&column.name));
                values.push(format!("{value} AS {}", quote_ident(&column.name)));
            }
            None if column.has_default || !column.not_null => {}
            None => return Err(no_value(table, column, rows)),
        }
    }
    // each CHECK judged on the row as made: a column it rejects becomes
    // NULL where it may; a row it rejects on NOT NULL columns is left out
    let mut outer: Vec<String> = names.clone();
    let mut filters = Vec::new();
    for check in &table.checks {
        let nullable: Vec<&Column> = check
            .columns
            .iter()
            .filter_map(|name| column_of(table, name))
            .filter(|c| !c.not_null && names.contains(&quote_ident(&c.name)))
            .collect();
        if nullable.is_empty() {
            filters.push(format!("({}) IS NOT FALSE", check.expression));
        }
        for column in nullable {
            let quoted = quote_ident(&column.name);
            if let Some(slot) = outer.iter_mut().find(|o| **o == quoted) {
                *slot = format!(
                    "CASE WHEN ({}) IS FALSE THEN NULL ELSE {quoted} END",
                    check.expression
                );
            }
        }
    }
    let overriding = match table.columns.iter().any(|c| c.identity == "a") {
        true => " OVERRIDING SYSTEM VALUE",
        false => "",
    };
    let filter = match filters.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", filters.join(" AND ")),
    };
    Ok(Made {
        columns: names.join(", "),
        select: format!(
            "SELECT {} FROM (SELECT {} FROM {rows_from}) AS made{filter}",
            outer.join(", "),
            values.join(", ")
        ),
        overriding,
    })
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    yes: bool,
}

/// Rows per INSERT: a line each, and a statement that ends in seconds.
const CHUNK: u64 = 1_000_000;

/// What seeding did, and what it knows to make more rows like them.
#[derive(Debug, Clone, Default)]
pub struct Seeding {
    pub seeded: Vec<Seeded>,
    tables: HashMap<i64, (u64, Table)>,
}

impl Seeding {
    /// Rows as an application writes them: the columns the schema
    /// requires (NOT NULL without a default) and `also` (those the
    /// measured migrations are about to require: the application writes
    /// them already, or the migration fails in production too), made as
    /// the seeder makes them (see [`made_rows`]); the rest left to their
    /// defaults.
    pub fn required(
        &self,
        table: &Table,
        rows_from: &str,
        also: &[String],
    ) -> Result<Made, String> {
        made_rows(table, (rows_from, Some(also)), &self.tables)
    }

    /// The rows a table was seeded with.
    pub fn rows(&self, table: &Table) -> u64 {
        self.tables.get(&table.oid).map_or(0, |(rows, _)| *rows)
    }
}

impl Table {
    /// A column an update can set to itself: one the schema requires
    /// (NOT NULL without a default: the application knows it) where there
    /// is one, else any; never generated, an identity, or in `key`.
    pub fn updatable(&self, key: &[String]) -> Option<&str> {
        let free = |c: &&Column| !c.generated && c.identity.is_empty() && !key.contains(&c.name);
        let mut columns = self.columns.iter().filter(free);
        let required = self
            .columns
            .iter()
            .filter(free)
            .find(|c| c.not_null && !c.has_default);
        required.or_else(|| columns.next()).map(|c| c.name.as_str())
    }
}

/// Seeds `tables`, `rows(table)` rows each, saying what it does to `out`.
pub fn seed(
    conn: &mut PgConnection,
    tables: &[Table],
    rows: &dyn Fn(&str) -> u64,
    out: &mut dyn Write,
) -> QueryResult<Seeding> {
    let superuser =
        diesel::sql_query("SELECT rolsuper AS yes FROM pg_roles WHERE rolname = current_user")
            .get_result::<Flag>(conn)?
            .yes;
    let triggers = if superuser { "ALL" } else { "USER" };
    let mut done: HashMap<i64, (u64, Table)> = HashMap::new();
    let mut seeded = Vec::new();
    for table in tables {
        let wanted = rows(&table.name);
        let started = Instant::now();
        let result = seed_one(conn, table, (wanted, triggers), &done);
        let (count, problem) = match result {
            Ok(count) if count < wanted => (
                count,
                Some(format!(
                    "{} of {wanted} rows: a CHECK constraint rejected the others",
                    count
                )),
            ),
            Ok(count) => (count, None),
            Err(error) => (0, Some(crate::pg_error::describe(&error))),
        };
        let _ = writeln!(
            out,
            "  {} {}: {} rows ({:.1}s){}",
            if problem.is_some() && count == 0 {
                "✗"
            } else {
                "✓"
            },
            table.name,
            indicatif::HumanCount(count),
            started.elapsed().as_secs_f64(),
            problem
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        );
        done.insert(table.oid, (count, table.clone()));
        seeded.push(Seeded {
            table: table.name.clone(),
            rows: count,
            problem,
        });
    }
    // vacuumed as well as analyzed: an autovacuum of the fresh rows would
    // otherwise start in the middle of a measurement
    conn.batch_execute("VACUUM ANALYZE")?;
    Ok(Seeding {
        seeded,
        tables: done,
    })
}

/// One table: its rows in chunks, in one transaction with its triggers off,
/// its sequences moved past the ids it wrote. Returns the rows in it.
fn seed_one(
    conn: &mut PgConnection,
    table: &Table,
    (wanted, triggers): (u64, &str),
    done: &HashMap<i64, (u64, Table)>,
) -> QueryResult<u64> {
    conn.transaction(|conn| {
        conn.batch_execute(&format!("ALTER TABLE {} DISABLE TRIGGER {triggers}", table.qualified))?;
        let mut from = 1;
        while from <= wanted {
            let to = (from + CHUNK - 1).min(wanted);
            let rows_from = format!("generate_series({from}::int8, {to}::int8) AS i");
            let made = made_rows(table, (&rows_from, None), done)
                .map_err(|why| diesel::result::Error::QueryBuilderError(why.into()))?;
            diesel::sql_query(made.insert(table)).execute(conn)?;
            from = to + 1;
        }
        conn.batch_execute(&format!("ALTER TABLE {} ENABLE TRIGGER {triggers}", table.qualified))?;
        for column in table.columns.iter().filter(|c| c.sequence.is_some()) {
            let sequence = column.sequence.as_deref().unwrap_or_default();
            diesel::sql_query(format!(
                "SELECT setval('{}', greatest((SELECT max({})::int8 FROM {}), 1)) IS NOT NULL AS yes",
                sequence.replace('\'', "''"),
                quote_ident(&column.name),
                table.qualified
            ))
            .get_result::<Flag>(conn)?;
        }
        diesel::sql_query(format!("SELECT count(*) AS n FROM {}", table.qualified))
            .get_result::<Count>(conn)
            .map(|c| c.n as u64)
    })
}
