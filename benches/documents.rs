//! Document sync speed on a 1 MB manuscript: one random incremental edit (target: median under
//! 10 µs) and position conversion in each encoding.
//!
//! Besides criterion's estimates, `incremental edit` prints the median and 99th percentile of
//! 10,000 individually timed edits, which is the figure the target is stated in.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storyteller_lsp::documents::{
    CharOffset, ContentChange, DocumentStore, Position, PositionEncoding, Range,
};

const URI: &str = "file:///bench/novel.md";
const MEGABYTE: usize = 1024 * 1024;
/// Every line starts with this many ASCII characters, so edits inside them are always valid.
const PREFIX: u32 = 17;

/// About 1 MB of prose with CRLF line endings, accents, CJK and emoji after an ASCII prefix.
fn manuscript(rng: &mut StdRng) -> String {
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
        "map",
        "ship",
        "😀",
        "storm",
        "雨",
        "and",
        "her",
        "light",
    ];
    let mut text = String::with_capacity(MEGABYTE + 200);
    let mut paragraph = 0;
    while text.len() < MEGABYTE {
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

/// A random edit inside the ASCII prefix of a random line: an insertion, a one-character
/// deletion, or a line split that starts the new line with a fresh prefix.
fn random_edit(rng: &mut StdRng, lines: u32) -> ContentChange {
    let line = rng.random_range(0..lines);
    let character = rng.random_range(0..PREFIX - 6);
    let at = Position::new(line, character);
    match rng.random_range(0..10) {
        0..=5 => ContentChange::replace(Range::new(at, at), "word "),
        6..=8 => ContentChange::replace(Range::new(at, Position::new(line, character + 1)), ""),
        _ => ContentChange::replace(Range::new(at, at), "\r\nParagraph 99999: "),
    }
}

fn open_manuscript(rng: &mut StdRng) -> (DocumentStore, u32) {
    let store = DocumentStore::new();
    store.open(URI, "markdown", 1, &manuscript(rng));
    let lines = store
        .snapshot(URI)
        .map(|s| s.text().len_lines())
        .unwrap_or(1) as u32;
    // The last line is empty (the text ends with CRLF): keep edits off it.
    (store, lines - 1)
}

fn incremental_edits(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let (store, lines) = open_manuscript(&mut rng);
    let mut version = 1;

    // The stated figure: 10,000 random edits, each timed.
    let mut times = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let change = random_edit(&mut rng, lines);
        version += 1;
        let start = Instant::now();
        let applied = store.apply_changes(URI, version, vec![change], PositionEncoding::Utf16);
        times.push(start.elapsed());
        assert!(applied.is_ok(), "{applied:?}");
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let size = store
        .snapshot(URI)
        .map(|s| s.text().len_bytes())
        .unwrap_or(0);
    println!(
        "10,000 incremental edits on a {:.2} MB manuscript: median {:?}, p99 {:?}, max {:?}",
        size as f64 / MEGABYTE as f64,
        at(0.5),
        at(0.99),
        times.last().copied().unwrap_or(Duration::ZERO),
    );

    c.bench_function("incremental edit, 1 MB manuscript (UTF-16)", |b| {
        b.iter(|| {
            let change = random_edit(&mut rng, lines);
            version += 1;
            black_box(store.apply_changes(URI, version, vec![change], PositionEncoding::Utf16))
        })
    });
}

fn position_conversion(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(11);
    let (store, _) = open_manuscript(&mut rng);
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
    group.finish();
}

criterion_group!(benches, incremental_edits, position_conversion);
criterion_main!(benches);
