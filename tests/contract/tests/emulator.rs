//! Every contract scenario against the emulator: a fresh in-process emulator per scenario,
//! configured as its profile says, all at once. `GOTRUE_CONTRACT_ONLY=<part of a name>`
//! runs a subset.
#![allow(clippy::print_stdout)]

use gotrue_contract::{Outcome, Target, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_scenario_passes_on_the_emulator() {
    let only = std::env::var("GOTRUE_CONTRACT_ONLY").ok();
    let mut runs = Vec::new();
    for scenario in scenarios::all() {
        if only.as_deref().is_some_and(|o| !scenario.name.contains(o)) {
            continue;
        }
        runs.push(tokio::spawn(async move {
            let outcome =
                gotrue_contract::run(&scenario, Target::emulator(scenario.profile).await).await;
            (scenario.name, outcome)
        }));
    }
    let mut failures = Vec::new();
    let total = runs.len();
    for run in runs {
        let (name, outcome) = run.await.expect("a scenario task");
        match outcome {
            Outcome::Passed => println!("pass  {name}"),
            Outcome::Skipped(why) => {
                failures.push(format!("{name}: skipped on the emulator ({why})"))
            }
            Outcome::Failed(why) => failures.push(format!("{name}: {why}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} scenarios failed on the emulator:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
