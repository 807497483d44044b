//! The walkthrough's steps for a scenario, planned before anything runs.

use crate::budget::Limits;
use crate::embedded::annotate;
use crate::scenarios::Scenario;

use super::report::StepKind;

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    Wait,
    Migrate {
        target: &'static str,
        fake: bool,
        /// Within the budget ([`super::DemoOptions::budget`]).
        budgeted: bool,
    },
    /// SQL run in a transaction that is rolled back.
    Naive(String),
    /// The running server (and the writers) switch to a new release of
    /// the app's code.
    Deploy(u32),
}

/// One step, named as the report names it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub name: String,
    pub kind: StepKind,
    pub action: Action,
}

fn step(name: String, kind: StepKind, action: Action) -> Planned {
    Planned { name, kind, action }
}

fn migrate(target: &'static str, fake: bool) -> Action {
    Action::Migrate {
        target,
        fake,
        budgeted: false,
    }
}

/// The walkthrough's steps for a scenario: a baseline, the risky migration,
/// back, then the safe path, each naive twin next to its safe step (the naive
/// NOT NULL before the safe one, since after it there is nothing left to do;
/// the naive UPDATE after the batched one, so its dead rows do not slow it).
/// With a budget, the backfill is then cleared and run again within it.
pub fn plan(scenario: &Scenario, budget: Option<Limits>) -> Vec<Planned> {
    let mut steps = risky_and_back(scenario);
    let after_risky = scenario
        .migrations()
        .iter()
        .skip_while(|m| m.version != scenario.risky)
        .skip(1);
    for files in after_risky {
        safe_steps(scenario, files.version, budget, &mut steps);
    }
    steps
}

/// The baseline, the risky step, its undoing, and the risky step again as
/// the safe path takes it (run again, or recorded with `--fake`).
fn risky_and_back(scenario: &Scenario) -> Vec<Planned> {
    let risky = scenario.risky;
    vec![
        step(
            "baseline (no migration)".to_owned(),
            StepKind::Baseline,
            Action::Wait,
        ),
        step(
            format!("{risky} risky: {}", title(scenario, risky)),
            StepKind::Risky,
            migrate(risky, false),
        ),
        step(
            format!("{risky} undone"),
            StepKind::Undo,
            migrate(scenario.start, false),
        ),
        if scenario.safe_path_fakes_risky {
            step(
                format!("{risky} recorded with --fake"),
                StepKind::Record,
                migrate(risky, true),
            )
        } else {
            step(
                format!("{risky} again"),
                StepKind::Risky,
                migrate(risky, false),
            )
        },
    ]
}

/// The steps of one safe migration: the deploy before it, if any; the
/// migration, with its naive twin beside it; a budgeted rerun of a
/// backfill.
fn safe_steps(
    scenario: &Scenario,
    version: &'static str,
    budget: Option<Limits>,
    steps: &mut Vec<Planned>,
) {
    if let Some(deploy) = scenario.deploy.filter(|d| d.before == version) {
        steps.push(step(
            format!("deploy release {}: {}", deploy.release, deploy.what),
            StepKind::Deploy,
            Action::Deploy(deploy.release),
        ));
    }
    let Some(recipe) = scenario.rust_migration(version) else {
        steps.push(step(
            format!("{version} {}", title(scenario, version)),
            StepKind::Safe,
            migrate(version, false),
        ));
        return;
    };
    let safe = step(
        format!("{version} {}", recipe.label()),
        StepKind::Safe,
        migrate(version, false),
    );
    match recipe.naive() {
        Some(naive) => {
            let twin = step(
                naive.name.to_owned(),
                StepKind::Naive,
                Action::Naive(naive.sql),
            );
            if naive.before {
                steps.extend([twin, safe]);
            } else {
                steps.extend([safe, twin]);
            }
        }
        None => steps.push(safe),
    }
    if let Some(budget) = budget.filter(|_| recipe.backfill().is_some()) {
        steps.extend([
            step(
                format!("{version} undone: cleared again, in batches"),
                StepKind::Undo,
                migrate(scenario.version_before(version), false),
            ),
            step(
                format!("{version} again within a budget ({})", budget.words()),
                StepKind::Budgeted,
                Action::Migrate {
                    target: version,
                    fake: false,
                    budgeted: true,
                },
            ),
        ]);
    }
}

/// A migration's banner: `Adding column created_at_new`.
fn title(scenario: &Scenario, version: &str) -> String {
    scenario
        .migrations()
        .iter()
        .find(|m| m.version == version)
        .and_then(|m| annotate(m.up).banner)
        .unwrap_or_default()
}
