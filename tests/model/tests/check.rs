//! The bounded check that `./scripts/test` runs: the engine as it is keeps every property
//! in every state within ten steps of a fresh device (both processes, every sign-out
//! scope, every fault), and the checker finds each earlier bug within that bound. The
//! exhaustive run is `cargo run -p tessera-model --release` (figures in the model's
//! README section of ARCHITECTURE.md).

use stateright::{Checker, HasDiscoveries, Model};

use tessera_model::{Protocol, earlier_bugs};

const DEPTH: usize = 10;

#[test]
fn the_engine_keeps_every_property_within_ten_steps() {
    let model = Protocol::fixed(2);
    let checker = model
        .clone()
        .checker()
        .threads(2)
        .target_max_depth(DEPTH)
        .spawn_bfs()
        .join();
    // No property broken, and each `sometimes` reached (the checks are not vacuous).
    checker.assert_properties();
    assert!(checker.unique_state_count() > 100_000);
}

#[test]
fn the_checker_finds_each_earlier_bug() {
    for (name, bugs, property) in earlier_bugs() {
        let model = Protocol {
            bugs,
            ..Protocol::fixed(2)
        };
        let checker = model
            .checker()
            .threads(2)
            .target_max_depth(DEPTH)
            .finish_when(HasDiscoveries::AnyOf([property].into()))
            .spawn_bfs()
            .join();
        assert!(
            checker.discovery(property).is_some(),
            "{name}: \"{property}\" not found broken; found: {:?}",
            checker.discoveries().keys().collect::<Vec<_>>()
        );
    }
}
