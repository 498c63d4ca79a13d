//! Conversions between lsp-types positions and the document model's own types, so that
//! `documents` never depends on the protocol crate.

use tower_lsp::lsp_types;

use crate::documents::{ContentChange, Position, Range};

pub fn to_document_position(p: lsp_types::Position) -> Position {
    Position::new(p.line, p.character)
}

pub fn to_lsp_position(p: Position) -> lsp_types::Position {
    lsp_types::Position::new(p.line, p.character)
}

pub fn to_document_range(r: lsp_types::Range) -> Range {
    Range::new(to_document_position(r.start), to_document_position(r.end))
}

/// `rangeLength` (deprecated) is ignored: the range alone says what is replaced.
pub fn to_content_change(event: lsp_types::TextDocumentContentChangeEvent) -> ContentChange {
    ContentChange {
        range: event.range.map(to_document_range),
        text: event.text,
    }
}

/// The file of a document URI; `None` for a buffer that is no file (`untitled:`).
pub fn file_path(uri: &str) -> Option<std::path::PathBuf> {
    tower_lsp::lsp_types::Url::parse(uri)
        .ok()
        .and_then(|url| url.to_file_path().ok())
}
