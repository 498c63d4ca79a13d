//! What the benches share for `scripts/bench-report`: each figure the report's table shows is
//! recorded as one JSON line in the file named by `STORYTELLER_BENCH_RESULTS` (nothing is
//! recorded without it), and `STORYTELLER_BENCH_QUICK=1` asks for fewer iterations and no
//! criterion statistics, so the whole report takes minutes on two cores.

#![allow(dead_code)] // Each bench uses a different part.

use std::io::Write;
use std::time::Duration;

/// Whether the quick mode of `scripts/bench-report` is on.
pub fn quick() -> bool {
    std::env::var("STORYTELLER_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// `full` iterations normally, `quick` in quick mode.
pub fn iterations(full: usize, quick_count: usize) -> usize {
    if quick() { quick_count } else { full }
}

/// Whether the criterion groups run: `cargo bench` does, the quick report does not (its figures
/// come from the timed loops, which give the percentiles the targets are stated in).
pub fn with_criterion() -> bool {
    !quick()
}

/// Records one figure for the report.
pub fn record(metric: &str, value: f64, unit: &str) {
    let Ok(path) = std::env::var("STORYTELLER_BENCH_RESULTS") else {
        return;
    };
    let line = serde_json::json!({"metric": metric, "value": value, "unit": unit});
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("cannot record {metric} in {path}: {e}");
    }
}

/// The value at quantile `q` of sorted `samples`.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Sorts `samples` and records their p50 and p99 (µs) as `{metric}_p50` / `{metric}_p99`;
/// returns them.
pub fn record_percentiles(metric: &str, samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
    record(&format!("{metric}_p50"), micros(p50), "µs");
    record(&format!("{metric}_p99"), micros(p99), "µs");
    (p50, p99)
}
