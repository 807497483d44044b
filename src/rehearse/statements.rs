//! A migration split into statements by PostgreSQL's own grammar
//! (libpg_query, through the `pg_query` crate), each with its line, the
//! relations it names, and its parse tree for the advice.
//!
//! The parser splits where PostgreSQL would: `DO` blocks, dollar-quoted
//! function bodies and `BEGIN ATOMIC` bodies stay whole (a scanner that
//! splits at semicolons cuts the last one apart).

use pg_query::NodeEnum;

/// One statement of a migration.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The line of the file its text starts on (from 1).
    pub line: usize,
    /// Its text, without the comments and blank lines before it.
    pub sql: String,
    /// Its parse tree (None for a statement the tree has nothing of, as an
    /// empty one).
    pub node: Option<NodeEnum>,
    /// The relations it names (tables, and for DDL their names as written,
    /// schema dropped).
    pub relations: Vec<String>,
    /// The statements a `DO` block runs, parsed (PL/pgSQL keeps them as
    /// text): what the block does to tables is theirs.
    pub inner: Vec<NodeEnum>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: PostgreSQL's parser refuses it: {message}")]
pub struct ParseError {
    pub file: String,
    pub message: String,
}

/// The statements of `sql`, in order.
pub fn split(file: &str, sql: &str) -> Result<Vec<Statement>, ParseError> {
    let error = |message: String| ParseError {
        file: file.to_owned(),
        message,
    };
    let parsed =
        pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| error(e.to_string()))?;
    let mut statements = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let start = usize::try_from(raw.stmt_location).unwrap_or(0);
        // a length of 0 means "to the end of the text"
        let end = match usize::try_from(raw.stmt_len).unwrap_or(0) {
            0 => sql.len(),
            len => (start + len).min(sql.len()),
        };
        let Some(text) = sql.get(start..end) else {
            return Err(error(format!(
                "a statement at byte {start} is not on a character boundary"
            )));
        };
        let skipped = leading_noise(text);
        let body = text[skipped..].trim_end().trim_end_matches(';').trim_end();
        if body.is_empty() {
            continue;
        }
        let line = 1 + sql[..start + skipped].matches('\n').count();
        let node = raw.stmt.as_ref().and_then(|n| n.node.clone());
        // names come from the statement parsed alone: its own relations
        let relations = pg_query::parse(body, pg_query::ParserOptions::DEFAULT)
            .map(|p| {
                let mut names: Vec<String> = p
                    .tables()
                    .into_iter()
                    .map(|t| t.rsplit('.').next().unwrap_or(&t).to_owned())
                    .collect();
                names.sort();
                names.dedup();
                names
            })
            .unwrap_or_default();
        let inner = match &node {
            Some(NodeEnum::DoStmt(block)) => embedded(block),
            _ => Vec::new(),
        };
        statements.push(Statement {
            line,
            sql: body.to_owned(),
            node,
            relations,
            inner,
        });
    }
    Ok(statements)
}

/// The SQL statements a `DO` block runs, parsed: PL/pgSQL's own parser
/// finds them in the body (as a function's), PostgreSQL's parses each.
fn embedded(block: &pg_query::protobuf::DoStmt) -> Vec<NodeEnum> {
    let body = block.args.iter().find_map(|arg| match &arg.node {
        Some(NodeEnum::DefElem(d)) if d.defname == "as" => {
            match d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                _ => None,
            }
        }
        _ => None,
    });
    let Some(body) = body else {
        return Vec::new();
    };
    let function = format!(
        "CREATE FUNCTION rehearse_block() RETURNS void AS $rehearse_block$ {body} $rehearse_block$ LANGUAGE plpgsql"
    );
    let Ok(tree) = pg_query::parse_plpgsql(&function) else {
        return Vec::new();
    };
    let mut queries = Vec::new();
    collect_sql(&tree, &mut queries);
    queries
        .iter()
        .filter_map(|q| pg_query::parse(q, pg_query::ParserOptions::DEFAULT).ok())
        .flat_map(|p| p.protobuf.stmts)
        .filter_map(|raw| raw.stmt.and_then(|n| n.node))
        .collect()
}

/// Every `PLpgSQL_stmt_execsql`'s query in a PL/pgSQL tree.
fn collect_sql(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(query) = map
                .get("PLpgSQL_stmt_execsql")
                .and_then(|s| s["sqlstmt"]["PLpgSQL_expr"]["query"].as_str())
            {
                out.push(query.to_owned());
            }
            map.values().for_each(|v| collect_sql(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_sql(v, out)),
        _ => {}
    }
}

/// How many bytes of whitespace and comments start `text`.
fn leading_noise(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next);
        } else {
            return text.len() - trimmed.len();
        }
    }
}

impl Statement {
    /// Whether PostgreSQL refuses to run it inside a transaction block.
    pub fn refuses_transaction(&self) -> bool {
        match &self.node {
            Some(NodeEnum::IndexStmt(s)) => s.concurrent,
            Some(NodeEnum::DropStmt(s)) => s.concurrent,
            Some(NodeEnum::ReindexStmt(s)) => s.params.iter().any(
                |p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"),
            ),
            Some(NodeEnum::VacuumStmt(s)) => s.is_vacuumcmd,
            Some(
                NodeEnum::CreatedbStmt(_)
                | NodeEnum::DropdbStmt(_)
                | NodeEnum::AlterSystemStmt(_)
                | NodeEnum::CreateTableSpaceStmt(_)
                | NodeEnum::DropTableSpaceStmt(_)
                | NodeEnum::CreateSubscriptionStmt(_),
            ) => true,
            Some(NodeEnum::DoStmt(_)) => commits_inside(&self.sql),
            _ => false,
        }
    }

    /// Whether it is transaction control (`BEGIN`, `COMMIT`, ...): a file
    /// that holds them manages its own transactions.
    pub fn is_transaction_control(&self) -> bool {
        matches!(self.node, Some(NodeEnum::TransactionStmt(_)))
    }

    /// A short name for what it does: `ALTER TABLE`, `CREATE INDEX`.
    pub fn kind(&self) -> String {
        let words: Vec<String> = self
            .sql
            .split_whitespace()
            .take(3)
            .map(str::to_uppercase)
            .collect();
        let take = match words.first().map(String::as_str) {
            Some("CREATE" | "ALTER" | "DROP") => match words.get(1).map(String::as_str) {
                Some("UNIQUE") => 3,
                _ => 2,
            },
            _ => 1,
        };
        words.into_iter().take(take).collect::<Vec<_>>().join(" ")
    }
}

/// Whether a `DO` block's body commits or rolls back (it then cannot run
/// inside a transaction block).
fn commits_inside(sql: &str) -> bool {
    sql.split(|c: char| !c.is_ascii_alphabetic())
        .any(|word| word.eq_ignore_ascii_case("commit") || word.eq_ignore_ascii_case("rollback"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_keep_their_lines_and_bodies_whole() {
        let sql = "-- a comment\nCREATE TABLE t (id int);\n\n/* why */\nDO $$\nBEGIN\n  PERFORM 1;\nEND $$;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\nCREATE INDEX CONCURRENTLY i ON t (id)";
        let statements = split("x.sql", sql).unwrap();
        let lines: Vec<usize> = statements.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 5, 9, 14]);
        assert!(statements[1].sql.starts_with("DO $$") && statements[1].sql.ends_with("END $$"));
        assert!(
            statements[2].sql.contains("SELECT 2;"),
            "{:?}",
            statements[2].sql
        );
        assert!(statements[3].refuses_transaction());
        assert!(!statements[0].refuses_transaction());
        assert_eq!(statements[0].relations, ["t"]);
        assert_eq!(statements[3].kind(), "CREATE INDEX");
    }

    #[test]
    fn a_do_blocks_statements_are_parsed_too() {
        let statements = split(
            "x.sql",
            "DO $$ BEGIN IF true THEN ALTER TABLE o ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES c (id) NOT VALID; END IF; COMMIT; END $$;",
        )
        .unwrap();
        assert!(matches!(
            statements[0].inner.as_slice(),
            [NodeEnum::AlterTableStmt(_)]
        ));
    }

    #[test]
    fn a_do_block_that_commits_refuses_a_transaction() {
        let statements = split("x.sql", "DO $$ BEGIN UPDATE t SET a = 1; COMMIT; END $$;").unwrap();
        assert!(statements[0].refuses_transaction());
    }

    #[test]
    fn postgres_18_syntax_parses() {
        let statements = split(
            "x.sql",
            "ALTER TABLE t ADD CONSTRAINT c NOT NULL a NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT c;",
        )
        .unwrap();
        assert_eq!(statements.len(), 2);
    }
}
