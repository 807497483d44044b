//! The verdict against a budget, and advice for what went over it.
//!
//! A statement is over budget when the load saw a failure while it ran, a
//! longer outage than `--max-outage`, or a lock it took that the load
//! needs (SHARE or stronger stops writes; ACCESS EXCLUSIVE stops reads
//! too) held longer than `--max-lock`. Each one over gets the advice
//! [`ADVICE`] holds for its kind of statement: the safe pattern, the lab's
//! project that shows it, and the rewritten SQL where the rewrite is
//! mechanical (written by PostgreSQL's own deparser from the changed tree).

use std::time::Duration;

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType, Node, ObjectType, ParseResult, RawStmt};

use super::statements::Statement;
use super::trace::Held;

/// The limits a migration must keep to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub max_outage: Duration,
    pub max_lock: Duration,
}

/// The errors the load's failed queries got, each with how many got it,
/// the most frequent first.
pub fn errors(samples: &[&crate::instruments::probe::Sample]) -> Vec<(String, usize)> {
    let mut counted: Vec<(String, usize)> = Vec::new();
    for error in samples
        .iter()
        .filter(|s| !s.ok)
        .filter_map(|s| s.error.as_ref())
    {
        let error = error.to_string();
        match counted.iter_mut().find(|(e, _)| *e == error) {
            Some((_, n)) => *n += 1,
            None => counted.push((error, 1)),
        }
    }
    counted.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counted
}

/// A query of the load that ran much slower after a statement than before
/// the migrations: its plan lost what made it fast (a dropped index).
#[derive(Debug, Clone, PartialEq)]
pub struct Slower {
    pub label: String,
    /// Medians of its successful runs, in ms.
    pub before_ms: f64,
    pub after_ms: f64,
}

/// How much slower a query must get to count ([`slower`]): twenty times
/// (a query that lost its index: 600x at 1 M rows; the load's other
/// queries, slowed by the scans sharing the machine, up to 10x), and by
/// more than 5 ms, so that noise on a sub-millisecond query does not.
const SLOWER_RATIO: f64 = 20.0;
const SLOWER_MS: f64 = 5.0;

/// The median latency of the successful runs sent within `(from, to)`,
/// when there are at least five.
fn median_ok(samples: &[crate::instruments::probe::Sample], (from, to): (f64, f64)) -> Option<f64> {
    let mut ms: Vec<f64> = samples
        .iter()
        .filter(|s| s.ok && s.sent_ms >= from && s.sent_ms < to)
        .map(|s| s.latency_ms)
        .collect();
    if ms.len() < 5 {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    Some(ms[ms.len() / 2])
}

/// The load's queries (label, runs) that ran [`SLOWER_RATIO`] times slower
/// in `after` than in `baseline`.
pub fn slower(
    queries: &[(String, Vec<crate::instruments::probe::Sample>)],
    baseline: (f64, f64),
    after: (f64, f64),
) -> Vec<Slower> {
    queries
        .iter()
        .filter_map(|(label, samples)| {
            let before_ms = median_ok(samples, baseline)?;
            let after_ms = median_ok(samples, after)?;
            (after_ms >= before_ms * SLOWER_RATIO && after_ms - before_ms > SLOWER_MS).then(|| {
                Slower {
                    label: label.clone(),
                    before_ms,
                    after_ms,
                }
            })
        })
        .collect()
}

/// Why a statement is over budget, each said in words; `errors` are what
/// the load's failures got ([`errors`]).
pub fn over(
    budget: &Budget,
    (load, errors): (&crate::instruments::probe::Summary, &[(String, usize)]),
    locks: &[Held],
    loaded: &[String],
) -> Vec<String> {
    let mut why = Vec::new();
    if load.failures > 0 {
        let said: Vec<String> = errors
            .iter()
            .take(3)
            .map(|(error, n)| format!("{error} ({n})"))
            .collect();
        why.push(format!(
            "{} of {} load queries failed while it ran{}",
            load.failures,
            load.requests,
            if said.is_empty() {
                String::new()
            } else {
                format!(": {}", said.join("; "))
            }
        ));
    }
    let max_outage = budget.max_outage.as_secs_f64() * 1000.0;
    if load.longest_outage_ms > max_outage {
        why.push(format!(
            "the load had no answer for {} (budget {})",
            crate::instruments::duration(load.longest_outage_ms),
            crate::instruments::duration(max_outage)
        ));
    }
    let max_lock = budget.max_lock.as_secs_f64() * 1000.0;
    // per table, its strongest lock over the budget (an index's lock is
    // its table's: the table's own says it)
    let mut worst: Vec<&Held> = Vec::new();
    for lock in locks
        .iter()
        .filter(|l| conflicts(l, loaded) && l.held_ms > max_lock)
    {
        match worst.iter_mut().find(|w| w.table == lock.table) {
            Some(w)
                if (lock.mode, lock.relation == lock.table) > (w.mode, w.relation == w.table) =>
            {
                *w = lock
            }
            Some(_) => {}
            None => worst.push(lock),
        }
    }
    for lock in worst {
        why.push(format!(
            "{} on {} held {} (budget {}): {} waited behind it",
            lock.mode,
            lock.relation,
            crate::instruments::duration(lock.held_ms),
            crate::instruments::duration(max_lock),
            if lock.mode.blocks_reads() {
                "reads and writes"
            } else {
                "writes"
            }
        ));
    }
    why
}

/// Why a statement whose time grows with its table goes over at
/// production size: each lock the load needs that it held for all its
/// run (a lock taken for a moment inside a longer block does not grow
/// with it), held longer by as much as the prediction says, against the
/// budget.
///
/// A statement that writes rows all over a loaded table (`rows_of`, see
/// [`unbatched_write`]) holds each row's lock until it commits: at
/// production size a write to any of them waits as long as the prediction
/// says, though no table lock stops it.
pub fn over_at_size(
    budget: &Budget,
    (locks, loaded): (&[Held], &[String]),
    (own_ms, predicted_ms): (f64, f64),
    rows_of: Option<&str>,
) -> Vec<String> {
    let max_lock = budget.max_lock.as_secs_f64() * 1000.0;
    let longer_ms = predicted_ms - own_ms;
    let mut why: Vec<String> = Vec::new();
    if let Some(table) = rows_of.filter(|t| loaded.iter().any(|l| l == t)) {
        if predicted_ms > max_lock {
            why.push(format!(
                "at production size, every row of {table} it writes is predicted to stay locked {} (budget {}): a write to any of them waits that long",
                crate::instruments::duration(predicted_ms),
                crate::instruments::duration(max_lock)
            ));
        }
    }
    for lock in locks
        .iter()
        .filter(|l| conflicts(l, loaded) && l.relation == l.table)
        .filter(|l| l.held_ms >= own_ms * 0.9)
    {
        let predicted = lock.held_ms + longer_ms;
        if lock.held_ms <= max_lock && predicted > max_lock {
            why.push(format!(
                "at production size, {} on {} is predicted to be held {} (budget {})",
                lock.mode,
                lock.relation,
                crate::instruments::duration(predicted),
                crate::instruments::duration(max_lock)
            ));
        }
    }
    why
}

/// The table a statement writes rows all over of, in one transaction: an
/// `UPDATE` or `DELETE` without `WHERE`, or whose `WHERE` never names `id`
/// (a filter such as `kind = 'debug'` matches rows in every part of the
/// table; a batch bounded by the primary key, as the lab's walks write
/// them, names it).
pub fn unbatched_write(node: &NodeEnum) -> Option<String> {
    let (relation, filter) = match node {
        NodeEnum::UpdateStmt(s) => (s.relation.as_ref(), s.where_clause.as_deref()),
        NodeEnum::DeleteStmt(s) => (s.relation.as_ref(), s.where_clause.as_deref()),
        _ => return None,
    };
    let names_id = |clause: &Node| {
        clause.node.as_ref().is_some_and(|n| {
            std::iter::once(n)
                .filter_map(|n| match n {
                    NodeEnum::ColumnRef(c) => Some(c),
                    _ => None,
                })
                .chain(n.nodes().into_iter().filter_map(|(n, ..)| match n {
                    pg_query::NodeRef::ColumnRef(c) => Some(c),
                    _ => None,
                }))
                .any(|c| {
                    matches!(
                        c.fields.last().and_then(|f| f.node.as_ref()),
                        Some(NodeEnum::String(s)) if s.sval == "id"
                    )
                })
        })
    };
    if filter.is_some_and(names_id) {
        return None;
    }
    relation.map(|r| r.relname.clone())
}

/// Whether a lock the load needs was held through later statements (well
/// past its own statement's `own_ms`), until the transaction committed.
pub fn held_through_later(locks: &[Held], loaded: &[String], own_ms: f64) -> bool {
    locks
        .iter()
        .any(|l| conflicts(l, loaded) && l.held_ms > own_ms + 100.0)
}

/// Whether a lock stops what the load does on its table.
pub fn conflicts(lock: &Held, loaded: &[String]) -> bool {
    lock.mode.blocks_writes() && loaded.contains(&lock.table)
}

/// Advice for a statement: what to do instead, the lab's project that
/// shows it, and the rewrite where it is mechanical.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Advice {
    pub text: String,
    /// The lab's project that demonstrates the safe pattern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
}

/// One kind of risky statement, and what to do instead.
pub struct Rule {
    pub name: &'static str,
    /// The lab's project that shows the safe way.
    pub project: Option<&'static str>,
    pub matches: fn(&NodeEnum) -> bool,
    pub text: &'static str,
    /// The rewritten SQL, where the rewrite is mechanical.
    pub rewrite: fn(&NodeEnum, u32) -> Option<String>,
}

/// The rules, in the order their advice is given.
pub const ADVICE: &[Rule] = &[
    Rule {
        name: "index built without CONCURRENTLY",
        project: Some("proj03_indexes"),
        matches: |n| matches!(n, NodeEnum::IndexStmt(s) if !s.concurrent),
        text: "build the index with CREATE INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on), alone in a migration that does not run in a transaction (run_in_transaction = false); a build that fails leaves an INVALID index to drop first",
        rewrite: |n, _| match n {
            NodeEnum::IndexStmt(s) => {
                let mut s = s.clone();
                s.concurrent = true;
                deparse(NodeEnum::IndexStmt(s))
            }
            _ => None,
        },
    },
    Rule {
        name: "constraint validated while it is added",
        project: Some("proj07_add_foreign_key"),
        matches: |n| {
            added_constraint(n, &[ConstrType::ConstrForeign, ConstrType::ConstrCheck]).is_some()
        },
        text: "add the constraint NOT VALID (a brief lock, no scan), commit, then VALIDATE CONSTRAINT in its own transaction (SHARE UPDATE EXCLUSIVE: reads and writes go on while it scans)",
        rewrite: |n, _| not_valid_then_validate(n),
    },
    Rule {
        name: "unique or primary key constraint built in place",
        project: Some("proj03_indexes"),
        matches: |n| {
            added_constraint(n, &[ConstrType::ConstrUnique, ConstrType::ConstrPrimary]).is_some()
        },
        text: "build the unique index first with CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT .. USING INDEX (catalog-only)",
        rewrite: |_, _| None,
    },
    Rule {
        name: "column type changed in place",
        project: Some("proj04_change_column_type"),
        matches: |n| has_cmd(n, AlterTableType::AtAlterColumnType),
        text: "a type change that is not binary-compatible rewrites the table under ACCESS EXCLUSIVE: add a new column, keep it in sync with a trigger, backfill it in batches (each its own short transaction), then switch to it",
        rewrite: |_, _| None,
    },
    Rule {
        name: "NOT NULL set on an existing column",
        project: Some("proj01_add_not_null_constraint"),
        matches: |n| has_cmd(n, AlterTableType::AtSetNotNull),
        text: "SET NOT NULL scans the table under ACCESS EXCLUSIVE: add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it (SHARE UPDATE EXCLUSIVE), then SET NOT NULL, which PostgreSQL 12+ proves from the valid check without a scan (on PostgreSQL 18: ADD CONSTRAINT .. NOT NULL col NOT VALID, then VALIDATE)",
        rewrite: set_not_null_safely,
    },
    Rule {
        name: "column dropped while code may use it",
        project: Some("proj05_drop_column"),
        matches: |n| has_cmd(n, AlterTableType::AtDropColumn),
        text: "the drop is catalog-only but takes ACCESS EXCLUSIVE, and code that still reads the column fails from then on: deploy code that no longer uses it first (expand/contract), then drop it with a short lock_timeout",
        rewrite: |_, _| None,
    },
    Rule {
        name: "default dropped from a NOT NULL column",
        project: Some("proj01_add_not_null_constraint"),
        matches: |n| {
            alter_cmds(n)
                .iter()
                .any(|c| c.subtype == AlterTableType::AtColumnDefault as i32 && c.def.is_none())
        },
        text: "without its default, a NOT NULL column must be written by every insert: code still running that does not write it (the release before, during a rolling deploy) fails every insert from then on; keep the database default until no running code leaves the column out (Django drops it at once)",
        rewrite: |_, _| None,
    },
    Rule {
        name: "column added with a default that rewrites",
        project: Some("proj09_alter_defaults"),
        matches: |n| {
            added_column(n, |c| {
                volatile(c.raw_default.as_deref())
                    || !c.identity.is_empty()
                    || !c.generated.is_empty()
            })
        },
        text: "a volatile default (clock_timestamp(), gen_random_uuid()), an identity, a serial or a stored generated column rewrites the table under ACCESS EXCLUSIVE (a constant default does not, since PostgreSQL 11): add the column nullable without it, backfill in batches, then set the default for new rows",
        rewrite: |_, _| None,
    },
    Rule {
        name: "index dropped without CONCURRENTLY",
        project: Some("proj08_drop_indexes"),
        matches: |n| matches!(n, NodeEnum::DropStmt(s) if !s.concurrent && s.remove_type == ObjectType::ObjectIndex as i32),
        text: "DROP INDEX takes ACCESS EXCLUSIVE on the table (and queues behind any reader): use DROP INDEX CONCURRENTLY, alone in a migration outside a transaction, after checking pg_stat_user_indexes.idx_scan that nothing uses it",
        rewrite: |n, _| match n {
            NodeEnum::DropStmt(s) => {
                let mut s = s.clone();
                s.concurrent = true;
                deparse(NodeEnum::DropStmt(s))
            }
            _ => None,
        },
    },
    Rule {
        name: "rows all over the table updated in one transaction",
        project: Some("proj06_large_backfills"),
        matches: |n| matches!(n, NodeEnum::UpdateStmt(_)) && unbatched_write(n).is_some(),
        text: "one UPDATE of rows all over the table holds every row's lock until it commits (writers to those rows wait) and writes its WAL at once: walk the primary key in batches, each its own short transaction (the lab's batched backfill)",
        rewrite: |_, _| None,
    },
    Rule {
        name: "rows all over the table deleted in one transaction",
        project: Some("proj10_large_deletes"),
        matches: |n| matches!(n, NodeEnum::DeleteStmt(_)) && unbatched_write(n).is_some(),
        text: "one DELETE of rows all over the table holds every row's lock until it commits (writers to those rows wait), writes its WAL at once and leaves the dead rows to one vacuum: delete by key range in batches, each its own short transaction (the lab's batched delete); where the deleted rows are the table's end, VACUUM then truncates it under ACCESS EXCLUSIVE unless the table has vacuum_truncate = off",
        rewrite: |_, _| None,
    },
];

/// The rule every statement that took ACCESS EXCLUSIVE gets besides its own.
pub const LOCK_TIMEOUT: &str = "it took ACCESS EXCLUSIVE: behind any long transaction it queues, and every query on the table queues behind it; run it with a short lock_timeout (SET lock_timeout = '1s') and retry with backoff when it fires (the lab's migrations do: src/retry.rs)";

/// The rule for a migration the load deadlocked with: PostgreSQL broke the
/// cycle by aborting one side after `deadlock_timeout` (measured on
/// crates.io's `default-versions-table`: its new table's two foreign keys
/// locked `crates`, then waited for `versions`, whose inserts' trigger
/// writes `crates`).
pub const DEADLOCK: &str = "it deadlocked with the load: it held a lock on one table while it waited for another that the application's transactions hold while they wait for the first; PostgreSQL aborted one side after deadlock_timeout. Lock one table per transaction: add each foreign key in its own migration (ADD CONSTRAINT .. NOT VALID, then VALIDATE CONSTRAINT), or take the locks in the order the application does";

/// The rule for a statement after which a load query ran much slower.
pub const SLOWER_ADVICE: &str = "the load reads through every index, since it cannot know which your application uses: if yours reads through what this statement dropped or changed, its queries become scans of the table. Prove the index unused first (pg_stat_user_indexes.idx_scan standing still on the primary and every replica, over days), then rehearse with --unused-index NAME (--scale-from reads production's counts)";

/// The rule for a migration that holds a lock through a later statement.
pub const SPLIT: &str = "its lock was held through the statements after it, until the transaction committed: split the DDL from the data change (commit the DDL alone, then change the data in batches)";

/// The advice for `statement`, in the order of [`ADVICE`].
pub fn advise(statement: &Statement, server_version_num: u32) -> Vec<Advice> {
    let Some(node) = &statement.node else {
        return Vec::new();
    };
    ADVICE
        .iter()
        .filter(|rule| (rule.matches)(node))
        .map(|rule| Advice {
            text: rule.text.to_owned(),
            project: rule.project.map(str::to_owned),
            rewrite: (rule.rewrite)(node, server_version_num),
        })
        .collect()
}

/// A statement tree back to SQL, by PostgreSQL's deparser.
fn deparse(node: NodeEnum) -> Option<String> {
    // the parser's own version, as it writes it into every tree
    let version = pg_query::parse("SELECT 1", pg_query::ParserOptions::DEFAULT)
        .map(|p| p.protobuf.version)
        .ok()?;
    let tree = ParseResult {
        version,
        stmts: vec![RawStmt {
            stmt: Some(Box::new(Node { node: Some(node) })),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    pg_query::deparse(&tree, pg_query::DeparseOptions::default()).ok()
}

fn alter_cmds(node: &NodeEnum) -> Vec<&pg_query::protobuf::AlterTableCmd> {
    match node {
        NodeEnum::AlterTableStmt(s) => s
            .cmds
            .iter()
            .filter_map(|c| match &c.node {
                Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd.as_ref()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn has_cmd(node: &NodeEnum, kind: AlterTableType) -> bool {
    alter_cmds(node).iter().any(|c| c.subtype == kind as i32)
}

/// A constraint of one of `kinds` added (and validated) by the statement.
fn added_constraint<'a>(
    node: &'a NodeEnum,
    kinds: &[ConstrType],
) -> Option<&'a pg_query::protobuf::Constraint> {
    alter_cmds(node)
        .into_iter()
        .filter(|c| c.subtype == AlterTableType::AtAddConstraint as i32)
        .find_map(|c| match c.def.as_deref().and_then(|d| d.node.as_ref()) {
            Some(NodeEnum::Constraint(con))
                if kinds.iter().any(|k| con.contype == *k as i32)
                    && !con.skip_validation
                    && con.indexname.is_empty() =>
            {
                Some(con.as_ref())
            }
            _ => None,
        })
}

/// Functions whose default differs per row: PostgreSQL then writes every
/// row (a constant or stable default, `now()` among them, is kept in the
/// catalog since PostgreSQL 11).
const VOLATILE: &[&str] = &[
    "clock_timestamp",
    "random",
    "gen_random_uuid",
    "uuid_generate_v4",
    "uuid_generate_v1",
    "nextval",
    "timeofday",
    "txid_current",
];

/// Whether a default expression calls a volatile function.
fn volatile(expression: Option<&Node>) -> bool {
    let Some(expression) = expression.and_then(|e| e.node.as_ref()) else {
        return false;
    };
    expression.nodes().into_iter().any(|(node, ..)| match node {
        pg_query::NodeRef::FuncCall(call) => call.funcname.iter().any(
            |n| matches!(&n.node, Some(NodeEnum::String(s)) if VOLATILE.contains(&s.sval.as_str())),
        ),
        _ => false,
    })
}

fn added_column(node: &NodeEnum, rewrites: fn(&pg_query::protobuf::ColumnDef) -> bool) -> bool {
    alter_cmds(node)
        .into_iter()
        .filter(|c| c.subtype == AlterTableType::AtAddColumn as i32)
        .any(|c| match c.def.as_deref().and_then(|d| d.node.as_ref()) {
            Some(NodeEnum::ColumnDef(col)) => {
                rewrites(col)
                    || col.constraints.iter().any(|k| match &k.node {
                        Some(NodeEnum::Constraint(con)) => {
                            (con.contype == ConstrType::ConstrDefault as i32 && volatile(con.raw_expr.as_deref()))
                                || con.contype == ConstrType::ConstrIdentity as i32
                                || con.contype == ConstrType::ConstrGenerated as i32
                        }
                        _ => false,
                    })
                    || col.type_name.as_ref().is_some_and(|t| {
                        t.names.iter().any(|n| {
                            matches!(&n.node, Some(NodeEnum::String(s)) if matches!(s.sval.as_str(), "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"))
                        })
                    })
            }
            _ => false,
        })
}

fn table_name(node: &NodeEnum) -> Option<String> {
    match node {
        NodeEnum::AlterTableStmt(s) => s.relation.as_ref().map(|r| {
            if r.schemaname.is_empty() {
                r.relname.clone()
            } else {
                format!("{}.{}", r.schemaname, r.relname)
            }
        }),
        _ => None,
    }
}

/// The constraint added NOT VALID, then validated apart.
fn not_valid_then_validate(node: &NodeEnum) -> Option<String> {
    let NodeEnum::AlterTableStmt(stmt) = node else {
        return None;
    };
    let mut stmt = stmt.clone();
    let mut name = None;
    for cmd in &mut stmt.cmds {
        if let Some(NodeEnum::AlterTableCmd(cmd)) = &mut cmd.node
            && let Some(def) = cmd.def.as_deref_mut()
            && let Some(NodeEnum::Constraint(con)) = &mut def.node
        {
            con.skip_validation = true;
            con.initially_valid = false;
            name = Some(con.conname.clone()).filter(|n| !n.is_empty());
        }
    }
    let table = table_name(node)?;
    let added = deparse(NodeEnum::AlterTableStmt(stmt))?;
    Some(match name {
        Some(name) => format!(
            "{added};\n-- then, in a migration (or transaction) of its own:\nALTER TABLE {table} VALIDATE CONSTRAINT {name};"
        ),
        None => format!(
            "{added};\n-- name the constraint, then in a migration of its own:\nALTER TABLE {table} VALIDATE CONSTRAINT <its name>;"
        ),
    })
}

/// SET NOT NULL through a valid CHECK (PostgreSQL 12 to 17), or as a NOT
/// NULL constraint added NOT VALID (18 on): each statement its own
/// transaction.
fn set_not_null_safely(node: &NodeEnum, version: u32) -> Option<String> {
    let table = table_name(node)?;
    let column = alter_cmds(node)
        .into_iter()
        .find(|c| c.subtype == AlterTableType::AtSetNotNull as i32)?
        .name
        .clone();
    let bare = table.rsplit('.').next().unwrap_or(&table).to_owned();
    let check = format!("{bare}_{column}_not_null");
    Some(if version >= 180_000 {
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT {check} NOT NULL {column} NOT VALID;\n-- then, in its own transaction:\nALTER TABLE {table} VALIDATE CONSTRAINT {check};"
        )
    } else {
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID;\n-- then, each in its own transaction:\nALTER TABLE {table} VALIDATE CONSTRAINT {check};\nALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;\nALTER TABLE {table} DROP CONSTRAINT {check};"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advice(sql: &str) -> Vec<Advice> {
        let statements = super::super::statements::split("t.sql", sql).unwrap();
        advise(&statements[0], 150_000)
    }

    /// A whole-table UPDATE takes no lock that stops the load, yet every
    /// row's lock lasts as long as it runs: at production size that alone
    /// is over the budget; a batch (with WHERE) is judged by its locks.
    #[test]
    fn every_row_locked_for_the_predicted_time_is_over_the_budget() {
        let budget = Budget {
            max_outage: Duration::from_secs(1),
            max_lock: Duration::from_secs(1),
        };
        let loaded = ["t".to_owned()];
        let node = |sql: &str| {
            super::super::statements::split("t.sql", sql).unwrap()[0]
                .node
                .clone()
                .unwrap()
        };
        let whole = unbatched_write(&node("UPDATE t SET a = 1"));
        assert_eq!(whole.as_deref(), Some("t"));
        assert_eq!(
            unbatched_write(&node("UPDATE t SET a = 1 WHERE id < 5")),
            None
        );
        assert_eq!(
            unbatched_write(&node(
                "DELETE FROM t WHERE t.id > 10 AND t.id <= 20 AND kind = 'debug'"
            )),
            None,
            "a batch bounded by the key"
        );
        assert_eq!(
            unbatched_write(&node("DELETE FROM t WHERE kind = 'debug'")).as_deref(),
            Some("t"),
            "a filter matches rows all over the table"
        );
        let over = over_at_size(&budget, (&[], &loaded), (700.0, 35_000.0), whole.as_deref());
        assert_eq!(over.len(), 1, "{over:?}");
        assert!(over[0].contains("every row of t"), "{over:?}");
        assert!(over_at_size(&budget, (&[], &loaded), (70.0, 700.0), whole.as_deref()).is_empty());
        assert!(over_at_size(&budget, (&[], &loaded), (700.0, 35_000.0), None).is_empty());
    }

    /// Runs of one query: `(sent_ms, latency_ms)`, all answered.
    fn runs(times: &[(f64, f64)]) -> Vec<crate::instruments::probe::Sample> {
        times
            .iter()
            .enumerate()
            .map(
                |(i, &(sent_ms, latency_ms))| crate::instruments::probe::Sample {
                    number: i as u64,
                    sent_ms,
                    latency_ms,
                    queue_ms: None,
                    status: None,
                    error: None,
                    id: None,
                    ok: true,
                },
            )
            .collect()
    }

    /// A read that lost its index is named; one that got 5x slower, one
    /// sped from nothing, and one with too few runs after are not.
    #[test]
    fn slower_names_the_queries_that_lost_what_made_them_fast() {
        let at = |from: f64, ms: f64, n: usize| -> Vec<(f64, f64)> {
            (0..n).map(|i| (from + i as f64, ms)).collect()
        };
        let with =
            |before: Vec<(f64, f64)>, after: Vec<(f64, f64)>| runs(&[before, after].concat());
        let queries = vec![
            (
                "read by sku".to_owned(),
                with(at(0.0, 0.8, 9), at(2000.0, 275.0, 9)),
            ),
            (
                "insert".to_owned(),
                with(at(0.0, 1.0, 9), at(2000.0, 5.0, 9)),
            ),
            (
                "read by key".to_owned(),
                with(at(0.0, 0.1, 9), at(2000.0, 4.0, 9)),
            ),
            (
                "update".to_owned(),
                with(at(0.0, 0.8, 9), at(2000.0, 275.0, 4)),
            ),
        ];
        let found = slower(&queries, (0.0, 1000.0), (1500.0, 3000.0));
        assert_eq!(
            found,
            vec![Slower {
                label: "read by sku".to_owned(),
                before_ms: 0.8,
                after_ms: 275.0
            }]
        );
    }

    #[test]
    fn every_rule_names_a_project_the_lab_has() {
        for rule in ADVICE {
            if let Some(project) = rule.project {
                assert!(
                    crate::scenarios::find(project).is_some(),
                    "{}: {project}",
                    rule.name
                );
            }
        }
    }

    #[test]
    fn mechanical_rewrites_are_written_by_the_deparser() {
        let index = advice("CREATE INDEX i ON t (a)");
        assert_eq!(
            index[0].rewrite.as_deref(),
            Some("CREATE INDEX CONCURRENTLY i ON t USING btree (a)")
        );
        let fk = advice("ALTER TABLE o ADD CONSTRAINT o_c_fk FOREIGN KEY (c) REFERENCES c (id)");
        let rewrite = fk[0].rewrite.as_deref().unwrap();
        assert!(
            rewrite.contains("NOT VALID") && rewrite.contains("VALIDATE CONSTRAINT o_c_fk"),
            "{rewrite}"
        );
        let not_null = advice("ALTER TABLE u ALTER COLUMN role SET NOT NULL");
        assert!(
            not_null[0]
                .rewrite
                .as_deref()
                .unwrap()
                .contains("CHECK (role IS NOT NULL) NOT VALID")
        );
        assert!(advice("UPDATE t SET a = 1 WHERE id < 5").is_empty());
        assert_eq!(
            advice("UPDATE t SET a = 1")[0].project.as_deref(),
            Some("proj06_large_backfills")
        );
        let drop = advice("DROP INDEX i");
        assert_eq!(
            drop[0].rewrite.as_deref(),
            Some("DROP INDEX CONCURRENTLY i")
        );
        assert!(
            advice("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT clock_timestamp()").len() == 1
        );
        assert!(advice("ALTER TABLE t ADD COLUMN c bigserial").len() == 1);
        assert!(advice("ALTER TABLE t ADD COLUMN c int").is_empty());
        // a constant or stable default stays in the catalog
        assert!(advice("ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT 'x'").is_empty());
        assert!(advice("ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()").is_empty());
        assert_eq!(
            advice("ALTER TABLE t ALTER COLUMN c DROP DEFAULT")[0]
                .project
                .as_deref(),
            Some("proj01_add_not_null_constraint")
        );
    }
}
