//! Document sync and context speed: one random incremental edit on a 1 MB and a 10 MB manuscript
//! (target: median under 10 µs), position conversion in each encoding, and context extraction
//! around the cursor (what every inline request does before it asks a provider).
//!
//! Besides criterion's estimates, each prints the median and 99th percentile of individually timed
//! operations, which is what the targets are stated in, and records them for
//! `scripts/bench-report` (see `benches/support`).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storyteller_lsp::assist::context::{self, ContextBudget};
use storyteller_lsp::assist::story;
use storyteller_lsp::documents::{
    CharOffset, ContentChange, DocumentStore, Position, PositionEncoding, Range,
};

const URI: &str = "file:///bench/novel.md";
const MEGABYTE: usize = 1024 * 1024;
/// Every line starts with this many ASCII characters, so edits inside them are always valid.
const PREFIX: u32 = 17;

/// About `bytes` of prose with CRLF line endings, accents, CJK and emoji after an ASCII prefix,
/// a chapter heading every 200 paragraphs.
fn manuscript(rng: &mut StdRng, bytes: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "keeper",
        "lamp",
        "sea",
        "stair",
        "night",
        "café",
        "灯台",
        "🌊",
        "whispered",
        "Mara",
        "ship",
        "😀",
        "storm",
        "雨",
        "and",
        "Tomas",
        "light",
    ];
    let mut text = String::with_capacity(bytes + 200);
    let mut paragraph = 0;
    while text.len() < bytes {
        if paragraph % 200 == 0 {
            text.push_str(&format!("# Chapter {:05} heading\r\n", paragraph / 200));
        }
        text.push_str(&format!("Paragraph {paragraph:05}: "));
        for _ in 0..rng.random_range(6..16) {
            text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
            text.push(' ');
        }
        text.push_str(".\r\n");
        paragraph += 1;
    }
    text
}

/// A random edit inside the ASCII prefix of a random paragraph line: an insertion, a
/// one-character deletion, or a line split that starts the new line with a fresh prefix.
fn random_edit(rng: &mut StdRng, lines: &[u32]) -> ContentChange {
    let line = lines[rng.random_range(0..lines.len())];
    let character = rng.random_range(0..PREFIX - 6);
    let at = Position::new(line, character);
    match rng.random_range(0..10) {
        0..=5 => ContentChange::replace(Range::new(at, at), "word "),
        6..=8 => ContentChange::replace(Range::new(at, Position::new(line, character + 1)), ""),
        _ => ContentChange::replace(Range::new(at, at), "\r\nParagraph 99999: "),
    }
}

/// The store with the manuscript open, and the numbers of its paragraph lines (a line split
/// shifts later lines, but each still starts with a paragraph prefix or a heading of 17+ ASCII
/// characters).
fn open_manuscript(rng: &mut StdRng, bytes: usize) -> (DocumentStore, Vec<u32>) {
    let text = manuscript(rng, bytes);
    let lines: Vec<u32> = text
        .split("\r\n")
        .enumerate()
        .filter(|(_, l)| l.len() >= PREFIX as usize)
        .map(|(i, _)| i as u32)
        .collect();
    let store = DocumentStore::new();
    store.open(URI, "markdown", 1, &text);
    (store, lines)
}

fn timed_edits(size_mb: usize, seed: u64) -> (DocumentStore, Vec<u32>, StdRng, i32) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (store, lines) = open_manuscript(&mut rng, size_mb * MEGABYTE);
    let n = support::iterations(10_000, 5_000);
    let mut version = 1;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let change = random_edit(&mut rng, &lines);
        version += 1;
        let start = Instant::now();
        let applied = store.apply_changes(URI, version, vec![change], PositionEncoding::Utf16);
        times.push(start.elapsed());
        assert!(applied.is_ok(), "{applied:?}");
    }
    let (p50, p99) = support::record_percentiles(&format!("edit_{size_mb}mb"), &mut times);
    let size = store
        .snapshot(URI)
        .map(|s| s.text().len_bytes())
        .unwrap_or(0);
    println!(
        "{n} incremental edits on a {:.2} MB manuscript: median {p50:?}, p99 {p99:?}, max {:?}",
        size as f64 / MEGABYTE as f64,
        times.last().copied().unwrap_or(Duration::ZERO),
    );
    (store, lines, rng, version)
}

fn incremental_edits(c: &mut Criterion) {
    for (size_mb, seed) in [(1, 7), (10, 8)] {
        let (store, lines, mut rng, mut version) = timed_edits(size_mb, seed);
        if support::with_criterion() {
            c.bench_function(
                &format!("incremental edit, {size_mb} MB manuscript (UTF-16)"),
                |b| {
                    b.iter(|| {
                        let change = random_edit(&mut rng, &lines);
                        version += 1;
                        black_box(store.apply_changes(
                            URI,
                            version,
                            vec![change],
                            PositionEncoding::Utf16,
                        ))
                    })
                },
            );
        }
    }
}

fn position_conversion(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(11);
    let (store, _) = open_manuscript(&mut rng, MEGABYTE);
    let Ok(snapshot) = store.snapshot(URI) else {
        return;
    };
    let chars = snapshot.text().len_chars();
    let mut group = c.benchmark_group("position conversion, 1 MB manuscript");
    for encoding in [
        PositionEncoding::Utf8,
        PositionEncoding::Utf16,
        PositionEncoding::Utf32,
    ] {
        let offsets: Vec<CharOffset> = (0..1024)
            .map(|_| CharOffset(rng.random_range(0..chars)))
            .collect();
        let positions: Vec<Position> = offsets
            .iter()
            .filter_map(|&o| snapshot.position_of(o, encoding).ok())
            .collect();
        // The report's figure: the median over batches of 1,024 conversions, per conversion.
        let batches = support::iterations(500, 100);
        let mut to_offset = Vec::with_capacity(batches);
        let mut to_position = Vec::with_capacity(batches);
        for _ in 0..batches {
            let start = Instant::now();
            for p in &positions {
                black_box(snapshot.offset_of(*p, encoding).ok());
            }
            to_offset.push(start.elapsed() / positions.len() as u32);
            let start = Instant::now();
            for o in &offsets {
                black_box(snapshot.position_of(*o, encoding).ok());
            }
            to_position.push(start.elapsed() / offsets.len() as u32);
        }
        let name = encoding.to_string().replace('-', "").to_lowercase();
        for (what, samples) in [
            ("to_offset", &mut to_offset),
            ("to_position", &mut to_position),
        ] {
            samples.sort();
            let median = support::percentile(samples, 0.5);
            support::record(
                &format!("position_{what}_{name}"),
                median.as_secs_f64() * 1e9,
                "ns",
            );
            println!("position conversion {what} ({encoding}): median {median:?} per conversion");
        }
        if support::with_criterion() {
            let mut i = 0;
            group.bench_function(format!("position → offset ({encoding})"), |b| {
                b.iter(|| {
                    i = (i + 1) % positions.len();
                    black_box(snapshot.offset_of(positions[i], encoding))
                })
            });
            group.bench_function(format!("offset → position ({encoding})"), |b| {
                b.iter(|| {
                    i = (i + 1) % offsets.len();
                    black_box(snapshot.position_of(offsets[i], encoding))
                })
            });
        }
    }
    group.finish();
}

/// What an inline request extracts before it renders a prompt: the text around the cursor within
/// the inline budget (paragraph and sentence boundaries, the heading above), at random cursors of
/// a 1 MB manuscript. (The story notes it names are chosen in `benches/inline.rs`.)
fn context_extraction(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(13);
    let (store, _) = open_manuscript(&mut rng, MEGABYTE);
    let Ok(snapshot) = store.snapshot(URI) else {
        return;
    };
    let text = snapshot.text();
    let chars = text.len_chars();
    let extract = |at: usize| black_box(context::surroundings(text, at, at, ContextBudget::INLINE));
    let n = support::iterations(5_000, 2_000);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let at = rng.random_range(0..chars);
        let start = Instant::now();
        extract(at);
        times.push(start.elapsed());
    }
    let (p50, p99) = support::record_percentiles("context_inline", &mut times);
    println!(
        "inline context extraction at {n} random cursors of 1 MB: median {p50:?}, p99 {p99:?}"
    );
    if support::with_criterion() {
        c.bench_function("context extraction, inline budget, 1 MB manuscript", |b| {
            b.iter(|| extract(rng.random_range(0..chars)))
        });
    }
}

/// The language every prompt names (whatlang over the text around the cursor), at random cursors
/// of a 1 MB manuscript: part of each inline request's own cost.
fn language_detection(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(17);
    let (store, _) = open_manuscript(&mut rng, MEGABYTE);
    let Ok(snapshot) = store.snapshot(URI) else {
        return;
    };
    let text = snapshot.text();
    let chars = text.len_chars();
    let n = support::iterations(5_000, 1_000);
    let windows: Vec<context::Surroundings> = (0..n.min(500))
        .map(|_| {
            let at = rng.random_range(0..chars);
            context::surroundings(text, at, at, ContextBudget::INLINE)
        })
        .collect();
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let around = &windows[i % windows.len()];
        let start = Instant::now();
        black_box(story::language(None, &around.before, &around.after));
        times.push(start.elapsed());
    }
    let (p50, p99) = support::record_percentiles("language_detection", &mut times);
    println!("language detection on inline windows of 1 MB: median {p50:?}, p99 {p99:?}");
    if support::with_criterion() {
        let mut i = 0;
        c.bench_function("language detection, inline window", |b| {
            b.iter(|| {
                i = (i + 1) % windows.len();
                let around = &windows[i];
                black_box(story::language(None, &around.before, &around.after))
            })
        });
    }
}

criterion_group!(
    benches,
    incremental_edits,
    position_conversion,
    context_extraction,
    language_detection
);

fn main() {
    benches();
    if support::with_criterion() {
        Criterion::default().configure_from_args().final_summary();
    }
}
