//! The stream decoders give the same events whatever the chunking: a recorded, realistic stream
//! of each format is split at every byte boundary, fed one byte at a time, and cut at random
//! (proptest) — including inside multi-byte UTF-8 (emoji, em dashes, Cyrillic) and between the
//! `\r` and `\n` of a line end.

use proptest::prelude::*;
use storyteller_lsp::providers::anthropic::MessagesStreamDecoder;
use storyteller_lsp::providers::classify::Operation;
use storyteller_lsp::providers::endpoint::OwnedContext;
use storyteller_lsp::providers::gemini::GeminiStreamDecoder;
use storyteller_lsp::providers::http::StreamDecoder;
use storyteller_lsp::providers::openai::ChatStreamDecoder;
use storyteller_lsp::providers::yandex::YandexStreamDecoder;
use storyteller_lsp::providers::{ErrorKind, FinishReason, ProviderKind, StreamEvent, Usage};

/// OpenAI: a role-only first delta, a `content: null` delta, emoji and an em dash, a usage chunk
/// with empty choices, `[DONE]`.
const OPENAI: &str = concat!(
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" Elena smiled 🙂\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" — and waited.\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}\n\n",
    "data: [DONE]\n\n",
);

/// DeepSeek: keep-alive comments while queued, `\r\n` line ends, a finish of `length`.
const DEEPSEEK: &str = concat!(
    ": keep-alive\r\n\r\n",
    ": keep-alive\r\n\r\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Ночь\"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" fell.\"},\"finish_reason\":\"length\"}]}\r\n\r\n",
    "data: [DONE]\r\n\r\n",
);

/// Anthropic: named events, a ping, a content block, usage in two places.
const ANTHROPIC: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\n",
    "data: {\"type\": \"ping\"}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"The lamp — \"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"guttered 🕯️.\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":9}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

/// Anthropic with an `error` event mid-stream.
const ANTHROPIC_ERROR: &str = concat!(
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Half a \"}}\n\n",
    "event: error\n",
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
);

/// Gemini: `\r\n\r\n` framing, full responses per event, the finish and usage in the last.
const GEMINI: &str = concat!(
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Mara opened \"}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n",
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"the door — 🌧️ rain.\"}],\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":6,\"totalTokenCount\":14},\"modelVersion\":\"gemini-2.5-flash\"}\r\n\r\n",
);

/// Yandex: cumulative Cyrillic text, one JSON object per line, a blank line, usage as strings.
const YANDEX: &str = concat!(
    "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"Анна\"},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}],\"usage\":{\"inputTextTokens\":\"10\",\"completionTokens\":\"1\",\"totalTokens\":\"11\"},\"modelVersion\":\"23.10.2024\"}}\n",
    "\n",
    "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"Анна открыла\"},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}],\"usage\":{\"inputTextTokens\":\"10\",\"completionTokens\":\"2\",\"totalTokens\":\"12\"},\"modelVersion\":\"23.10.2024\"}}\n",
    "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"Анна открыла дверь.\"},\"status\":\"ALTERNATIVE_STATUS_FINAL\"}],\"usage\":{\"inputTextTokens\":\"10\",\"completionTokens\":\"4\",\"totalTokens\":\"14\"},\"modelVersion\":\"23.10.2024\"}}\n",
);

/// Yandex wrapping the same objects in a JSON array, pretty-printed across lines.
const YANDEX_ARRAY: &str = concat!(
    "[{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"Анна\"},\n",
    "  \"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}]}},\n",
    "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"Анна ушла.\"},\"status\":\"ALTERNATIVE_STATUS_TRUNCATED_FINAL\"}]}}]",
);

/// Yandex replacing the text with a refusal: the suggestion ends with what was sent.
const YANDEX_FILTER: &str = concat!(
    "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"Анна\"},\"status\":\"ALTERNATIVE_STATUS_PARTIAL\"}]}}\n",
    "{\"result\":{\"alternatives\":[{\"message\":{\"role\":\"assistant\",\"text\":\"К сожалению, я не могу.\"},\"status\":\"ALTERNATIVE_STATUS_CONTENT_FILTER\"}]}}\n",
);

#[derive(Debug, Clone, Copy)]
enum Format {
    OpenAi,
    DeepSeek,
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
        Format::DeepSeek => Box::new(ChatStreamDecoder::new(ctx(ProviderKind::DeepSeek))),
        Format::Anthropic => Box::new(MessagesStreamDecoder::new(ctx(ProviderKind::Claude))),
        Format::Gemini => Box::new(GeminiStreamDecoder::new(ctx(ProviderKind::Gemini))),
        Format::Yandex => Box::new(YandexStreamDecoder::new(ctx(ProviderKind::Yandex))),
    }
}

/// What a decoder made of a body: its events up to the first terminal one, and the error kind
/// that ended it, if any.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    events: Vec<StreamEvent>,
    error: Option<ErrorKind>,
}

fn decode(format: Format, chunks: &[&[u8]]) -> Outcome {
    let mut d = decoder(format);
    let mut events = Vec::new();
    let terminal =
        |events: &[StreamEvent]| events.iter().any(|e| matches!(e, StreamEvent::Done { .. }));
    for chunk in chunks {
        if let Err(e) = d.feed(chunk, &mut events) {
            return Outcome {
                events,
                error: Some(e.kind()),
            };
        }
        if terminal(&events) {
            return Outcome {
                events,
                error: None,
            };
        }
    }
    let error = d.finish(&mut events).err().map(|e| e.kind());
    Outcome { events, error }
}

fn cases() -> Vec<(&'static str, Format, &'static str, Outcome)> {
    use StreamEvent::{Delta, Done};
    let d = |s: &str| Delta(s.to_string());
    vec![
        (
            "openai",
            Format::OpenAi,
            OPENAI,
            Outcome {
                events: vec![
                    d(" Elena smiled 🙂"),
                    d(" — and waited."),
                    Done {
                        finish: FinishReason::Stop,
                        usage: Some(Usage {
                            input_tokens: 12,
                            output_tokens: 7,
                        }),
                    },
                ],
                error: None,
            },
        ),
        (
            "deepseek",
            Format::DeepSeek,
            DEEPSEEK,
            Outcome {
                events: vec![
                    d("Ночь"),
                    d(" fell."),
                    Done {
                        finish: FinishReason::Length,
                        usage: None,
                    },
                ],
                error: None,
            },
        ),
        (
            "anthropic",
            Format::Anthropic,
            ANTHROPIC,
            Outcome {
                events: vec![
                    d("The lamp — "),
                    d("guttered 🕯️."),
                    Done {
                        finish: FinishReason::Stop,
                        usage: Some(Usage {
                            input_tokens: 25,
                            output_tokens: 9,
                        }),
                    },
                ],
                error: None,
            },
        ),
        (
            "anthropic error event",
            Format::Anthropic,
            ANTHROPIC_ERROR,
            Outcome {
                events: vec![d("Half a ")],
                error: Some(ErrorKind::Unavailable),
            },
        ),
        (
            "gemini",
            Format::Gemini,
            GEMINI,
            Outcome {
                events: vec![
                    d("Mara opened "),
                    d("the door — 🌧️ rain."),
                    Done {
                        finish: FinishReason::Stop,
                        usage: Some(Usage {
                            input_tokens: 8,
                            output_tokens: 6,
                        }),
                    },
                ],
                error: None,
            },
        ),
        (
            "yandex",
            Format::Yandex,
            YANDEX,
            Outcome {
                events: vec![
                    d("Анна"),
                    d(" открыла"),
                    d(" дверь."),
                    Done {
                        finish: FinishReason::Stop,
                        usage: Some(Usage {
                            input_tokens: 10,
                            output_tokens: 4,
                        }),
                    },
                ],
                error: None,
            },
        ),
        (
            "yandex array",
            Format::Yandex,
            YANDEX_ARRAY,
            Outcome {
                events: vec![
                    d("Анна"),
                    d(" ушла."),
                    Done {
                        finish: FinishReason::Length,
                        usage: None,
                    },
                ],
                error: None,
            },
        ),
        (
            "yandex content filter",
            Format::Yandex,
            YANDEX_FILTER,
            Outcome {
                events: vec![
                    d("Анна"),
                    Done {
                        finish: FinishReason::ContentFilter,
                        usage: None,
                    },
                ],
                error: None,
            },
        ),
    ]
}

#[test]
fn each_recorded_stream_decodes_whole() {
    for (name, format, body, want) in cases() {
        assert_eq!(decode(format, &[body.as_bytes()]), want, "{name}");
    }
}

#[test]
fn every_split_point_gives_the_same_events() {
    for (name, format, body, want) in cases() {
        let bytes = body.as_bytes();
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            assert_eq!(decode(format, &[a, b]), want, "{name} split at {at}");
        }
    }
}

#[test]
fn one_byte_chunks_give_the_same_events() {
    for (name, format, body, want) in cases() {
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        assert_eq!(decode(format, &chunks), want, "{name}");
    }
}

#[test]
fn a_stream_cut_short_is_a_protocol_error_at_every_cut() {
    for (name, format, body, want) in cases() {
        if want.error.is_some() {
            continue;
        }
        let bytes = body.as_bytes();
        // Cut anywhere before the event that ends the stream has arrived whole: never a clean
        // `Done`. (An OpenAI-format stream whose finish reason arrived but whose `[DONE]` did
        // not is accepted: the text is whole, only the usage chunk may be lost.)
        let last_event_start = match format {
            Format::Yandex => bytes[..bytes.len() - 1]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1),
            Format::OpenAi | Format::DeepSeek => {
                let finish = body.find("\"finish_reason\":\"").unwrap_or(0);
                body[..finish].rfind("data:").unwrap_or(0)
            }
            _ => body.rfind("data:").unwrap_or(0),
        };
        for cut in 0..last_event_start {
            let got = decode(format, &[&bytes[..cut]]);
            assert_eq!(
                got.error,
                Some(ErrorKind::Protocol),
                "{name} cut at {cut}: {got:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_chunkings_give_the_same_events(
        case in 0usize..8,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let all = cases();
        let (name, format, body, want) = &all[case % all.len()];
        let bytes = body.as_bytes();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut from = 0;
        for p in points {
            chunks.push(&bytes[from..p]);
            from = p;
        }
        chunks.push(&bytes[from..]);
        prop_assert_eq!(&decode(*format, &chunks), want, "{}", name);
    }
}

#[test]
fn a_vendor_error_framed_before_broken_bytes_in_the_same_chunk_is_the_error_reported() {
    // Found by `tests/prop_streaming.rs`: the framing error (invalid UTF-8, a stray byte) used to
    // win over the vendor's error event that arrived before it in the same chunk, so the same
    // body gave `Unavailable` or `Protocol` depending on how it was chunked.
    let cases: [(&str, Format, &[u8]); 4] = [
        (
            "openai",
            Format::OpenAi,
            b"data: {\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"code\":503}}\n\n\x80data: x\n\n",
        ),
        (
            "anthropic",
            Format::Anthropic,
            b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"m\"}}\n\n\x80\n\n",
        ),
        (
            "gemini",
            Format::Gemini,
            b"data: {\"error\":{\"code\":503,\"message\":\"m\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n\x80\r\n\r\n",
        ),
        (
            "yandex",
            Format::Yandex,
            b"{\"error\":{\"grpcCode\":14,\"httpCode\":503,\"message\":\"m\"}}\nx",
        ),
    ];
    for (name, format, body) in cases {
        let whole = decode(format, &[body]);
        assert_eq!(
            whole.error,
            Some(ErrorKind::Unavailable),
            "{name}: {whole:?}"
        );
        let split_at = body.len() - 2;
        let chunked = decode(format, &[&body[..split_at], &body[split_at..]]);
        assert_eq!(chunked, whole, "{name}");
    }
}
