//! The answer-cleaning stage (`assist::shape`): the cost per model reply of cleaning and joining
//! it (target: p50 far below 1 ms), over English and Russian replies shaped like real chat
//! models' (preambles, labels, fences, sign-offs, dialogue, mid-word and mid-sentence seams,
//! Describe character), each with context windows of the size the server extracts (inline:
//! about 2,000 chars before the cursor; actions: about 6,000). Run with
//! `cargo bench --bench shape`.
//!
//! Besides criterion's estimate, each reply is timed alone many times and the median and 99th
//! percentile per reply are printed and recorded for `scripts/bench-report` (`benches/support`).

mod support;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group};
use storyteller_lsp::assist::actions::Placement;
use storyteller_lsp::assist::shape::{self, ReplyContext};

/// (inline?, placement, dialogue, end of the text before, selection, after, reply)
type Reply = (
    bool,
    Placement,
    bool,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const AT: Placement = Placement::AtCursor;
const REPLACE: Placement = Placement::ReplaceSelection;
const AFTER: Placement = Placement::AfterSelection;

const REPLIES: &[Reply] = &[
    (
        true,
        AT,
        false,
        "She waited by the window.",
        "",
        "",
        "Here is the continuation:\n\nThe rain came down harder.",
    ),
    (
        true,
        AT,
        false,
        "She waited by the window.",
        "",
        "",
        "Sure! Here's the next part of the scene:\n\nThe rain came down harder.",
    ),
    (
        true,
        AT,
        false,
        "She waited by the window.",
        "",
        "",
        "**Continuation:**\nThe rain came down harder.",
    ),
    (
        true,
        AT,
        false,
        "She waited by the window.",
        "",
        "",
        "```text\nThe rain came down harder.\n```",
    ),
    (
        true,
        AT,
        false,
        "She waited by the window.",
        "",
        "",
        "The rain came down harder. (This keeps the tension high.)",
    ),
    (
        true,
        AT,
        false,
        "She waited by the window.",
        "",
        "",
        "The rain came down harder. Let me know if you'd like a different tone.",
    ),
    (
        true,
        AT,
        false,
        "She opened the ledger and",
        "",
        "",
        "For a long moment she said nothing.",
    ),
    (
        true,
        AT,
        false,
        "She took down the ledger",
        "",
        "",
        "and laid it open.",
    ),
    (true, AT, false, "The lighthou", "", "", "se keeper slept."),
    (
        true,
        AT,
        false,
        "She pulled on one bo",
        "",
        "",
        "boot, then the other.",
    ),
    (
        true,
        AT,
        false,
        "Mara turned to the stranger.",
        "",
        "",
        "“Who told you we were here?”",
    ),
    (
        true,
        AT,
        false,
        "He walked",
        "",
        " to the harbour.",
        " slowly down the hill to the harbour.",
    ),
    (
        true,
        AT,
        false,
        "Мара закрыла дверь.",
        "",
        "",
        "Вот продолжение:\n\nВетер стих.",
    ),
    (
        true,
        AT,
        false,
        "Мара закрыла дверь.",
        "",
        "",
        "— Кто сказал, что мы здесь?",
    ),
    (
        true,
        AT,
        false,
        "Она открыла дверь и",
        "",
        "",
        "Потом долго молчала. Надеюсь, это поможет!",
    ),
    (
        false,
        AT,
        false,
        "She waited by the window.",
        "",
        "\n\nThe harbour was quiet.",
        "Here is the continuation:\n\nThe rain came down harder.\n\nThe harbour lights went out one by one.\n\n---\n\nThis continuation builds suspense.",
    ),
    (
        false,
        AT,
        false,
        "The harbour of Marrow End faced north.",
        "",
        "",
        "Its wall was built of black basalt.\n\nNote: I kept the details consistent with your notes.",
    ),
    (
        false,
        AT,
        false,
        "Мара закрыла дверь.",
        "",
        "",
        "— Кто сказал, что мы здесь? — спросила она.\n\nЕсли хотите, я могу продолжить сцену.",
    ),
    (
        false,
        REPLACE,
        false,
        "Mara said: ",
        "\"Close the door, Wren.\"",
        " He did not move.",
        "Sure! Here's a tighter version:\n\n\"Shut the door, Wren.\"",
    ),
    (
        false,
        REPLACE,
        false,
        "",
        "Лампа не горела.",
        "",
        "Конечно! Вот переписанный текст:\n\nЛампа погасла.",
    ),
    (
        false,
        REPLACE,
        true,
        "",
        "They stood at the door.",
        "",
        "Here is some dialogue:\n\n“Who told you we were here?” Tomas asked.\n\nI hope this helps!",
    ),
    (
        false,
        AFTER,
        false,
        "\"My name is ",
        "Sabine Orlov",
        ". I rent the room upstairs.\" She smiled.",
        "Up close she was older than her voice, grey at the temples.",
    ),
    (
        false,
        AFTER,
        false,
        "В дверях стояла ",
        "Вера Орлова",
        ", и никто её не узнал. Потом она ушла.",
        "Описание персонажа:\nВысокая, седая, в мокром плаще.",
    ),
    (
        false,
        AFTER,
        false,
        "She asked for ",
        "Mr. Quill",
        " at the desk. Nobody answered.",
        "He was a thin man.",
    ),
];

/// About `chars` of prose ending with `tail`, as a context window would hold.
fn window(tail: &str, chars: usize) -> String {
    let russian = tail
        .chars()
        .any(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap_or(c)));
    let paragraph = if russian {
        "Мара поднялась по лестнице маяка с фонарём в руке. Буря давила на стекло, а Томас так и не вернулся из гавани. "
    } else {
        "Mara climbed the ninety-one steps of the tower with the lantern in her left hand. The storm leaned on the glass, and Tomas had not come back from the harbour. "
    };
    let mut text = String::new();
    while text.chars().count() < chars {
        text.push_str(paragraph);
    }
    text.push_str("\n\n");
    text.push_str(tail);
    text
}

struct Prepared {
    inline: bool,
    placement: Placement,
    dialogue: bool,
    before: String,
    selection: &'static str,
    after: String,
    reply: &'static str,
}

fn prepared() -> Vec<Prepared> {
    REPLIES
        .iter()
        .map(
            |&(inline, placement, dialogue, before, selection, after, reply)| {
                let (before_chars, after_chars) =
                    if inline { (2_000, 480) } else { (6_000, 1_600) };
                let mut after = after.to_string();
                if after.is_empty() || after.starts_with("\n\n") {
                    after.push_str(&window("", after_chars));
                }
                Prepared {
                    inline,
                    placement,
                    dialogue,
                    before: window(before, before_chars),
                    selection,
                    after,
                    reply,
                }
            },
        )
        .collect()
}

/// Cleans and joins one reply, as the server does.
fn shape_one(p: &Prepared) -> Option<String> {
    let cx = ReplyContext {
        before: &p.before,
        selection: p.selection,
        after: &p.after,
        placement: p.placement,
        cut_off: false,
        dialogue: p.dialogue,
    };
    if p.inline {
        shape::inline(p.reply, &cx)
    } else {
        shape::action(p.reply, &cx).map(|seam| seam.text)
    }
}

fn cleaning_stage(c: &mut Criterion) {
    let replies = prepared();
    for p in &replies {
        assert!(
            shape_one(p).is_some(),
            "every reply in the bench leaves text"
        );
    }
    let rounds = support::iterations(2_000, 300);
    let mut times = Vec::with_capacity(rounds * replies.len());
    for _ in 0..rounds {
        for p in &replies {
            let start = Instant::now();
            black_box(shape_one(black_box(p)));
            times.push(start.elapsed());
        }
    }
    let (p50, p99) = support::record_percentiles("shape_reply", &mut times);
    println!(
        "cleaning stage over {} replies × {rounds}: median {p50:?} per reply, p99 {p99:?}",
        replies.len()
    );
    if support::with_criterion() {
        let mut group = c.benchmark_group("shape");
        group.throughput(criterion::Throughput::Elements(replies.len() as u64));
        group.bench_function("clean and join every reply of the table", |b| {
            b.iter(|| {
                for p in &replies {
                    black_box(shape_one(black_box(p)));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, cleaning_stage);

fn main() {
    benches();
    if support::with_criterion() {
        Criterion::default().configure_from_args().final_summary();
    }
}
