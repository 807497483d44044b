//! Durations at production size, predicted from the rehearsal's.
//!
//! A statement whose time grows with its table (it rewrote something, or
//! it scans or writes the whole table: an index build, a validation, an
//! UPDATE or DELETE, VACUUM) is scaled by how much larger the table is in
//! production: linearly, and by `n log n` for an index build (a sort).
//! A statement that changes only the catalog takes as long at any size;
//! it is not predicted. The predictor's error, measured on the lab's own
//! migrations, is in docs/rehearse.md.

use std::collections::BTreeMap;

use pg_query::NodeEnum;

use super::statements::Statement;

/// How a statement's time grows with its table's rows, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    Linear,
    /// A sort: `n log n`.
    Sort,
}

/// Whether (and how) a statement's duration grows with its table. A `DO`
/// block grows as the statements it runs do (a loop of UPDATEs, yes; a
/// guarded DROP COLUMN, no), and as a scan where they could not be parsed.
pub fn growth(statement: &Statement, rewrote: bool) -> Option<Growth> {
    let node = statement.node.as_ref()?;
    let scans = |n: &NodeEnum| match n {
        NodeEnum::IndexStmt(_) => Some(Growth::Sort),
        NodeEnum::UpdateStmt(_)
        | NodeEnum::DeleteStmt(_)
        | NodeEnum::VacuumStmt(_)
        | NodeEnum::ClusterStmt(_)
        | NodeEnum::ReindexStmt(_) => Some(Growth::Linear),
        NodeEnum::AlterTableStmt(s) => {
            let validates = s.cmds.iter().any(|c| match &c.node {
                Some(NodeEnum::AlterTableCmd(cmd)) => validates(cmd),
                _ => false,
            });
            (validates || !s.cmds.is_empty() && rewrote).then_some(Growth::Linear)
        }
        _ => None,
    };
    let grows = match node {
        NodeEnum::DoStmt(_) if statement.inner.is_empty() => Some(Growth::Linear),
        NodeEnum::DoStmt(_) => statement
            .inner
            .iter()
            .filter_map(scans)
            .max_by_key(|g| *g as u8),
        node => scans(node),
    };
    match grows {
        Some(growth) => Some(growth),
        None if rewrote => Some(Growth::Linear),
        None => None,
    }
}

/// Whether an `ALTER TABLE` command reads every row: a constraint added
/// without `NOT VALID`, `VALIDATE CONSTRAINT`, `SET NOT NULL`.
fn validates(cmd: &pg_query::protobuf::AlterTableCmd) -> bool {
    use pg_query::protobuf::AlterTableType;
    let added = || match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::Constraint(constraint)) => !constraint.skip_validation,
        _ => false,
    };
    cmd.subtype == AlterTableType::AtValidateConstraint as i32
        || cmd.subtype == AlterTableType::AtSetNotNull as i32
        || (cmd.subtype == AlterTableType::AtAddConstraint as i32 && added())
}

/// The predicted duration of a statement that took `ms` on `tables` (the
/// ones it names, an index standing for its table) of `rehearsed` rows,
/// at `production` rows, from the largest whose production size is known.
pub fn predict(
    statement: &Statement,
    (ms, rewrote): (f64, bool),
    tables: &[String],
    (rehearsed, production): (&BTreeMap<String, u64>, &BTreeMap<String, u64>),
) -> Option<f64> {
    // a statement that took no measurable time did not scan (a SET NOT
    // NULL a valid CHECK proves, say): it takes as long at any size
    if ms < 2.0 {
        return None;
    }
    let growth = growth(statement, rewrote)?;
    let (small, large) = tables
        .iter()
        .filter_map(|t| Some((*rehearsed.get(t)?, *production.get(t)?)))
        .filter(|(small, _)| *small > 0)
        .max_by_key(|(_, large)| *large)?;
    Some(scale(ms, (small, large), growth))
}

/// `ms` at `small` rows, scaled to `large`.
pub fn scale(ms: f64, (small, large): (u64, u64), growth: Growth) -> f64 {
    let ratio = large as f64 / small as f64;
    match growth {
        Growth::Linear => ms * ratio,
        Growth::Sort => ms * ratio * (large as f64).ln() / (small as f64).max(2.0).ln(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_changes_are_not_scaled_and_scans_are() {
        let one = |sql: &str| {
            super::super::statements::split("t.sql", sql)
                .unwrap()
                .remove(0)
        };
        assert_eq!(growth(&one("ALTER TABLE t ADD COLUMN c int"), false), None);
        assert_eq!(
            growth(&one("ALTER TABLE t ALTER COLUMN c TYPE bigint"), true),
            Some(Growth::Linear)
        );
        assert_eq!(
            growth(&one("CREATE INDEX i ON t (c)"), false),
            Some(Growth::Sort)
        );
        assert_eq!(
            growth(&one("ALTER TABLE t ALTER COLUMN c SET NOT NULL"), false),
            Some(Growth::Linear)
        );
        assert_eq!(
            growth(
                &one("ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0) NOT VALID"),
                false
            ),
            None
        );
        assert_eq!(
            growth(&one("ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0)"), false),
            Some(Growth::Linear)
        );
        assert_eq!(
            growth(&one("ALTER TABLE t VALIDATE CONSTRAINT k"), false),
            Some(Growth::Linear)
        );
        // a DO block grows as what it runs
        let guarded_drop = "DO $$ BEGIN IF true THEN ALTER TABLE t DROP COLUMN c; END IF; END $$";
        assert_eq!(growth(&one(guarded_drop), false), None);
        let batches = "DO $$ BEGIN UPDATE t SET c = 1 WHERE id < 10; COMMIT; END $$";
        assert_eq!(growth(&one(batches), false), Some(Growth::Linear));
        assert!((scale(100.0, (1000, 10_000), Growth::Linear) - 1000.0).abs() < 1e-9);
        assert!(scale(100.0, (1000, 10_000), Growth::Sort) > 1000.0);
    }
}
