//! Property tests of the streaming parsers (issue 10 item 3), on arbitrary input: the SSE parser,
//! the JSON-sequence splitter (Yandex) and each vendor's stream decoder never panic, give the
//! same result however the bytes are chunked (empty chunks and cuts inside a `\r\n` or a UTF-8
//! character included), and — for well-formed input built from a model — give exactly the
//! model's events. `tests/providers_streaming.rs` holds the recorded-stream cases these extend.
//!
//! 10,000 cases per property (see `tests/prop_support`).

mod prop_support;

use proptest::prelude::*;
use serde_json::{Value, json};
use storyteller_lsp::providers::anthropic::MessagesStreamDecoder;
use storyteller_lsp::providers::classify::Operation;
use storyteller_lsp::providers::endpoint::OwnedContext;
use storyteller_lsp::providers::gemini::GeminiStreamDecoder;
use storyteller_lsp::providers::http::StreamDecoder;
use storyteller_lsp::providers::ndjson::JsonSeqParser;
use storyteller_lsp::providers::openai::ChatStreamDecoder;
use storyteller_lsp::providers::sse::{SseEvent, SseParser};
use storyteller_lsp::providers::yandex::YandexStreamDecoder;
use storyteller_lsp::providers::{ErrorKind, ProviderKind, StreamEvent};

// ---- chunking ----

/// `bytes` cut at the given points (sorted, duplicates give empty chunks).
fn chunked<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::with_capacity(points.len() + 1);
    let mut from = 0;
    for p in points {
        chunks.push(&bytes[from..p]);
        from = p;
    }
    chunks.push(&bytes[from..]);
    chunks
}

fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    proptest::collection::vec(any::<prop::sample::Index>(), 0..24)
}

/// Bytes assembled from pieces that matter to the formats, plus raw bytes (invalid UTF-8).
fn wire_bytes(pieces: &'static [&'static [u8]], max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => proptest::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|p| p.concat())
}

const SSE_PIECES: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"event: ",
    b"event:delta",
    b"id: 7",
    b"retry: 10",
    b":",
    b": keep-alive",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"\r\n\r\n",
    b" ",
    b"x",
    b"{\"a\":1}",
    "é".as_bytes(),
    "🙂".as_bytes(),
    "\u{feff}".as_bytes(),
];

const JSON_PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\\"",
    b",",
    b":",
    b" ",
    b"\n",
    b"\r\n",
    b"a",
    b"1",
    b"{\"result\":{\"alternatives\":[]}}",
    "д".as_bytes(),
];

// ---- the SSE parser ----

/// Events, then whether it failed, then whether it stopped mid-event (when it did not fail).
#[derive(Debug, PartialEq)]
struct SseOutcome {
    events: Vec<SseEvent>,
    failed: bool,
    mid_event: bool,
}

fn sse(chunks: &[&[u8]]) -> SseOutcome {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if parser.push(chunk, &mut events).is_err() {
            return SseOutcome {
                events,
                failed: true,
                mid_event: false,
            };
        }
    }
    SseOutcome {
        events,
        failed: false,
        mid_event: parser.mid_event(),
    }
}

/// An event as a server would write it, and what a client must read.
#[derive(Debug, Clone)]
struct ModelEvent {
    event: Option<String>,
    data: Vec<String>,
    /// Comment lines before the event.
    comments: usize,
}

fn field_text() -> impl Strategy<Value = String> {
    // No line breaks (they end a field); anything else, a leading space or colon included.
    "[ a-zA-Z0-9:{}\"é🙂]{0,12}"
}

fn model_event() -> impl Strategy<Value = ModelEvent> {
    (
        proptest::option::of("[a-z_]{1,10}"),
        proptest::collection::vec(field_text(), 0..4),
        0usize..3,
    )
        .prop_map(|(event, data, comments)| ModelEvent {
            event,
            data,
            comments,
        })
}

/// The line ends of one body: `\n` and `\r\n` mixed, or `\r` alone (a lone `\r` followed by a
/// `\n` line end would read as one `\r\n`, which no server means).
fn line_ends() -> impl Strategy<Value = Vec<&'static str>> {
    prop_oneof![
        3 => proptest::collection::vec(prop_oneof![Just("\n"), Just("\r\n")], 1..4),
        1 => Just(vec!["\r"]),
    ]
}

// ---- the JSON sequence splitter ----

#[derive(Debug, PartialEq)]
struct SeqOutcome {
    objects: Vec<String>,
    failed: bool,
    mid_object: bool,
}

fn split(chunks: &[&[u8]]) -> SeqOutcome {
    let mut parser = JsonSeqParser::new();
    let mut objects = Vec::new();
    for chunk in chunks {
        if parser.push(chunk, &mut objects).is_err() {
            return SeqOutcome {
                objects,
                failed: true,
                mid_object: false,
            };
        }
    }
    SeqOutcome {
        objects,
        failed: false,
        mid_object: parser.mid_object(),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[ -~é🙂\"\\\\{}\\[\\]]{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z\"{}]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map("[a-z]{1,6}", json_value(), 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

// ---- the vendor decoders ----

#[derive(Debug, Clone, Copy)]
enum Format {
    OpenAi,
    Anthropic,
    Gemini,
    Yandex,
}

fn decoder(format: Format) -> Box<dyn StreamDecoder> {
    let ctx = |kind| OwnedContext {
        kind,
        operation: Operation::Generate,
        model: "m".into(),
        key: None,
    };
    match format {
        Format::OpenAi => Box::new(ChatStreamDecoder::new(ctx(ProviderKind::OpenAi))),
        Format::Anthropic => Box::new(MessagesStreamDecoder::new(ctx(ProviderKind::Claude))),
        Format::Gemini => Box::new(GeminiStreamDecoder::new(ctx(ProviderKind::Gemini))),
        Format::Yandex => Box::new(YandexStreamDecoder::new(ctx(ProviderKind::Yandex))),
    }
}

/// What the stream driver makes of a body: the events up to the first `Done` (it stops reading
/// there), else the error that ended it (from a chunk or from the end of the body).
#[derive(Debug, PartialEq)]
struct DecodeOutcome {
    events: Vec<StreamEvent>,
    error: Option<ErrorKind>,
}

fn decode(format: Format, chunks: &[&[u8]]) -> DecodeOutcome {
    let mut d = decoder(format);
    let mut events = Vec::new();
    let done = |events: &mut Vec<StreamEvent>| {
        let at = events
            .iter()
            .position(|e| matches!(e, StreamEvent::Done { .. }))?;
        events.truncate(at + 1);
        Some(())
    };
    for chunk in chunks {
        let fed = d.feed(chunk, &mut events);
        if done(&mut events).is_some() {
            return DecodeOutcome {
                events,
                error: None,
            };
        }
        if let Err(e) = fed {
            return DecodeOutcome {
                events,
                error: Some(e.kind()),
            };
        }
    }
    let finished = d.finish(&mut events);
    if done(&mut events).is_some() {
        return DecodeOutcome {
            events,
            error: None,
        };
    }
    DecodeOutcome {
        events,
        error: finished.err().map(|e| e.kind()),
    }
}

const YANDEX_PARTIAL: &[u8] = "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"дождь\"},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}],\"usage\":{\"inputTextTokens\":\"1\",\"completionTokens\":\"1\",\"totalTokens\":\"2\"}}}\n".as_bytes();
const YANDEX_FINAL: &[u8] = "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"дождь идёт\"},\"status\":\"ALTERNATIVE_STATUS_FINAL\"}],\"usage\":{\"inputTextTokens\":\"1\",\"completionTokens\":\"2\",\"totalTokens\":\"3\"}}}\n".as_bytes();

/// Realistic lines of each format (and fragments of them) for the decoders' inputs.
fn vendor_pieces(format: Format) -> &'static [&'static [u8]] {
    match format {
        Format::OpenAi => &[
            b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" rain\"},\"finish_reason\":null}]}\n\n",
            b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
            b"data: {\"error\":{\"message\":\"m\",\"type\":\"server_error\"}}\n\n",
            b"data: [DONE]\n\n",
            b": keep-alive\r\n\r\n",
            b"data: {\"choices\":[{\"delta\":",
            b"\n",
            b"\r\n",
            b"data: ",
            b"}",
        ],
        Format::Anthropic => &[
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" rain \xe2\x80\x94\"}}\n\n",
            b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n",
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n",
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"m\"}}\n\n",
            b"data: {\"type\":",
            b"\n",
            b"\r\n",
        ],
        Format::Gemini => &[
            b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" rain\"}],\"role\":\"model\"},\"index\":0}]}\r\n\r\n",
            b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\".\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":2,\"candidatesTokenCount\":1}}\r\n\r\n",
            b"data: {\"error\":{\"code\":503,\"message\":\"m\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
            b"data: {\"candidates\":[{\"content\":",
            b"\r\n",
            b"\n",
        ],
        Format::Yandex => &[
            YANDEX_PARTIAL,
            YANDEX_FINAL,
            b"{\"error\":{\"grpcCode\":8,\"httpCode\":429,\"message\":\"m\"}}\n",
            b"{\"result\":",
            b"}",
            b"\n",
        ],
    }
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::OpenAi),
        Just(Format::Anthropic),
        Just(Format::Gemini),
        Just(Format::Yandex),
    ]
}

fn vendor_body(format: Format) -> impl Strategy<Value = Vec<u8>> {
    let pieces = vendor_pieces(format);
    let piece = prop_oneof![
        12 => proptest::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(prop_support::config())]

    /// Arbitrary bytes, any chunking: the SSE parser never panics and gives what it gives for
    /// the whole body at once.
    #[test]
    fn sse_parsing_does_not_depend_on_chunking(
        body in wire_bytes(SSE_PIECES, 40),
        cuts in cuts(),
    ) {
        let whole = sse(&[&body]);
        prop_assert_eq!(sse(&chunked(&body, &cuts)), whole);
    }

    /// Events written the way servers write them (any line end, comments, multi-line data,
    /// events without data) read back as the model says: one event per event with data, its
    /// `event:` name, its data lines joined by `\n`.
    #[test]
    fn sse_events_read_back_as_written(
        events in proptest::collection::vec(model_event(), 0..8),
        ends in line_ends(),
        cuts in cuts(),
    ) {
        let mut body = String::new();
        let mut expected = Vec::new();
        let mut end = ends.iter().cycle();
        for e in &events {
            for _ in 0..e.comments {
                body.push_str(": comment");
                body.push_str(end.next().unwrap_or(&"\n"));
            }
            if let Some(name) = &e.event {
                body.push_str(&format!("event: {name}"));
                body.push_str(end.next().unwrap_or(&"\n"));
            }
            for line in &e.data {
                // `data: ` with the one optional space; a value starting with a space keeps it.
                body.push_str(&format!("data: {line}"));
                body.push_str(end.next().unwrap_or(&"\n"));
            }
            body.push_str(end.next().unwrap_or(&"\n"));
            if !e.data.is_empty() {
                expected.push(SseEvent {
                    event: e.event.clone().unwrap_or_default(),
                    data: e.data.join("\n"),
                });
            }
        }
        let got = sse(&chunked(body.as_bytes(), &cuts));
        prop_assert!(!got.failed);
        prop_assert_eq!(got.events, expected);
    }

    /// Arbitrary bytes, any chunking: the JSON-sequence splitter never panics and does not
    /// depend on the chunking.
    #[test]
    fn json_sequence_splitting_does_not_depend_on_chunking(
        body in wire_bytes(JSON_PIECES, 40),
        cuts in cuts(),
    ) {
        let whole = split(&[&body]);
        prop_assert_eq!(split(&chunked(&body, &cuts)), whole);
    }

    /// Objects written as NDJSON, pretty-printed, or in an array, with strings holding braces,
    /// quotes and backslashes: each comes out exactly as written.
    #[test]
    fn json_sequences_split_into_the_objects_written(
        objects in proptest::collection::vec(json_object(), 0..6),
        pretty in any::<bool>(),
        array in any::<bool>(),
        cuts in cuts(),
    ) {
        let texts: Vec<String> = objects
            .iter()
            .map(|o| if pretty { serde_json::to_string_pretty(o) } else { serde_json::to_string(o) })
            .collect::<Result<_, _>>()
            .expect("JSON");
        let body = if array {
            format!("[{}]", texts.join(",\n"))
        } else {
            texts.iter().map(|t| format!("{t}\n")).collect()
        };
        let got = split(&chunked(body.as_bytes(), &cuts));
        prop_assert!(!got.failed);
        prop_assert!(!got.mid_object);
        prop_assert_eq!(got.objects, texts);
    }

    /// Every vendor's decoder, on bodies mixing its real events, fragments of them and stray
    /// bytes: no panic, and the same events and error however the body is chunked.
    #[test]
    fn vendor_stream_decoders_do_not_depend_on_chunking(
        (format, body) in format().prop_flat_map(|f| (Just(f), vendor_body(f))),
        cuts in cuts(),
    ) {
        let whole = decode(format, &[&body]);
        prop_assert_eq!(decode(format, &chunked(&body, &cuts)), whole);
    }
}
