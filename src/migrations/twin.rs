//! The plain-SQL twins of the recipes, held to what the recipes generate.
//!
//! `manage` runs a recipe from Rust; the `diesel` CLI runs the `up.sql` (and
//! `down.sql`, where the way down is Rust's too) in its migration's
//! directory, which the recipe generates ([`crate::recipes::Recipe::twin_up`]).
//! The test below holds the committed files equal to them, so the two ways
//! cannot drift (`RISKY_MIGRATIONS_BLESS=1 cargo test --lib twin` rewrites
//! them).

#[cfg(test)]
mod tests {
    use crate::scenarios;

    /// The committed twins are what the recipes generate.
    #[test]
    fn the_sql_twins_are_generated_from_the_recipes() {
        let bless = std::env::var_os("RISKY_MIGRATIONS_BLESS").is_some();
        for scenario in scenarios::all() {
            for files in scenario.migrations() {
                let Some(recipe) = scenario.rust_migration(files.version) else {
                    continue;
                };
                assert!(
                    !files.run_in_transaction(),
                    "{} needs run_in_transaction = false",
                    files.name
                );
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(scenario.project())
                    .join("migrations")
                    .join(files.name);
                // each file calls its project's guard first, where it can
                let guarded = |sql: String| {
                    crate::migrations::owner::guarded(scenario.project(), &sql, false)
                        .unwrap_or(sql)
                };
                let expected = [
                    ("up.sql", Some(recipe.twin_up()), files.up),
                    ("down.sql", recipe.twin_down(), files.down),
                ];
                for (file, generated, committed) in expected {
                    let Some(generated) = generated.map(guarded) else {
                        continue;
                    };
                    if bless {
                        std::fs::write(dir.join(file), &generated).unwrap();
                    } else {
                        assert_eq!(
                            committed,
                            generated,
                            "{}/{file} differs from its generated twin: run `RISKY_MIGRATIONS_BLESS=1 cargo test --lib twin`",
                            dir.display()
                        );
                    }
                }
            }
        }
    }
}
