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
    if let Ok(path) = std::env::var("STORYTELLER_BENCH_RESULTS") {
        let line = serde_json::json!({"metric": metric, "value": value, "unit": unit});
        append(&path, &line, metric);
    }
}

/// Records, in the file named by `STORYTELLER_BENCH_WINDOWS`, when a process measured by a
/// timed loop was doing the loop's work: its pid, the loop's first and last instants on the
/// system's monotonic clock, and how many operations it made. `scripts/profile-inline` samples
/// the whole machine with `perf` (on that clock) and keeps the samples in these windows.
pub fn record_window(label: &str, pid: u32, start: f64, end: f64, operations: usize) {
    if let Ok(path) = std::env::var("STORYTELLER_BENCH_WINDOWS") {
        let line = serde_json::json!({"label": label, "pid": pid, "start": start, "end": end,
                                      "operations": operations});
        append(&path, &line, label);
    }
}

/// Now on `CLOCK_MONOTONIC`, in seconds: the clock `perf record -k CLOCK_MONOTONIC` stamps
/// its samples with (`Instant` reads it too, but does not show its value).
pub fn monotonic_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration; CLOCK_MONOTONIC
    // exists on every Linux, so the call cannot fail (its result is checked all the same).
    let status = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_MONOTONIC)");
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

fn append(path: &str, line: &serde_json::Value, what: &str) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{line}"));
    if let Err(e) = written {
        eprintln!("cannot record {what} in {path}: {e}");
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
