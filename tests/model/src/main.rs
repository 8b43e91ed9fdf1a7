//! Explores the model and prints what it found, as a Markdown table:
//! `cargo run -p tessera-model --release -- [max-generation [seconds per run]]`.
//!
//! The engine as it is, explored exhaustively (depth-first, the two processes taken as
//! alike), must break no property; each earlier bug, switched back on alone and explored
//! breadth-first, must break its property, with the shortest counterexample, printed.
// A report on standard output is this program's whole job.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model};
use tessera_model::{Protocol, Scope};

fn main() {
    let mut args = std::env::args().skip(1);
    let max_generation = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let seconds = args.next().and_then(|a| a.parse().ok()).unwrap_or(3600);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    println!("max generation {max_generation}, {threads} threads, at most {seconds} s a run\n");
    println!("| engine | scopes | explored | states | unique | seconds | properties broken |");
    println!("|---|---|---|---:|---:|---:|---|");
    let scope_sets = [
        vec![Scope::Local],
        vec![Scope::Local, Scope::Global, Scope::Others],
    ];
    for scopes in scope_sets {
        let model = Protocol {
            scopes: scopes.clone(),
            ..Protocol::fixed(max_generation)
        };
        let started = Instant::now();
        let checker = model
            .clone()
            .checker()
            .threads(threads)
            .symmetry()
            .timeout(Duration::from_secs(seconds))
            .spawn_dfs()
            .join();
        let elapsed = started.elapsed();
        let complete = elapsed < Duration::from_secs(seconds);
        println!(
            "| as it is | {scopes:?} | {} | {} | {} | {:.1} | {} |",
            if complete {
                "all"
            } else {
                "until the time-out"
            },
            checker.state_count(),
            checker.unique_state_count(),
            elapsed.as_secs_f64(),
            broken(&model, &checker)
        );
    }
    let mut paths = Vec::new();
    for (name, bugs, property) in tessera_model::earlier_bugs() {
        let model = Protocol {
            bugs,
            ..Protocol::fixed(max_generation)
        };
        let started = Instant::now();
        let checker = model
            .clone()
            .checker()
            .threads(threads)
            .finish_when(HasDiscoveries::AnyOf([property].into()))
            .timeout(Duration::from_secs(seconds))
            .spawn_bfs()
            .join();
        println!(
            "| before: {name} | all | breadth-first to the first failure | {} | {} | {:.1} | {} |",
            checker.state_count(),
            checker.unique_state_count(),
            started.elapsed().as_secs_f64(),
            broken(&model, &checker)
        );
        if let Some(path) = checker.discovery(property) {
            paths.push((name, property, path.into_actions()));
        }
    }
    for (name, property, actions) in paths {
        println!("\nBefore, {name}: \"{property}\" broken by");
        for action in actions {
            println!("  {action:?}");
        }
    }
}

fn broken(model: &Protocol, checker: &impl Checker<Protocol>) -> String {
    let names: Vec<&str> = model
        .properties()
        .iter()
        .filter(|p| p.expectation.discovery_is_failure())
        .filter(|p| checker.discovery(p.name).is_some())
        .map(|p| p.name)
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join("; ")
    }
}
