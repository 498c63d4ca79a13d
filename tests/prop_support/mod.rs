//! The case count of the property tests (`tests/prop_*.rs`): each property runs at least 10,000
//! cases in the normal (CI) run; `PROPTEST_CASES` replaces that count when set, for a longer soak
//! (`PROPTEST_CASES=1000000 cargo test --release --test prop_streaming`, see README).

#![allow(dead_code)]

use proptest::prelude::ProptestConfig;
use proptest::test_runner::FileFailurePersistence;

/// What CI runs per property.
pub const CI_CASES: u32 = 10_000;

/// [`CI_CASES`], or `PROPTEST_CASES` when it is set. Other `PROPTEST_*` variables (e.g.
/// `PROPTEST_MAX_SHRINK_ITERS`) are honoured as proptest reads them.
pub fn config() -> ProptestConfig {
    // A failing case is saved next to the test (`tests/prop_x.proptest-regressions`) and tried
    // first on the next run; commit the file with the fix.
    let mut config = ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CI_CASES;
    }
    config
}
