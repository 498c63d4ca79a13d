//! What the server announces in its `initialize` result (DESIGN.md §3), and the position
//! encoding negotiated from what the client offers.
//!
//! `inlineCompletionProvider` is not here: lsp-types 0.94 has no field for it, so
//! `inline_protocol` adds it to the serialized result.

use tower_lsp::lsp_types::{
    CodeActionKind, CodeActionOptions, CodeActionProviderCapability, CompletionOptions,
    ExecuteCommandOptions, InitializeParams, OneOf, PositionEncodingKind, SaveOptions,
    ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind,
    TextDocumentSyncOptions, TextDocumentSyncSaveOptions, WorkDoneProgressOptions,
    WorkspaceFoldersServerCapabilities, WorkspaceServerCapabilities,
};

use super::commands::StorytellerCommand;
use crate::documents::PositionEncoding;

/// Code action kind of the actions that rewrite a selection.
pub const REWRITE_KIND: &str = "refactor.rewrite.storyteller";
/// Code action kind of the actions that write new text (continue scene, describe, …).
///
/// Under `refactor`, not `source`: VS Code leaves `source` actions out of the light bulb and the
/// Ctrl+. menu (they appear only in "Source Action…"), so an author at the cursor saw "No code
/// actions available". Not `refactor.rewrite`, so that `only: ["refactor.rewrite"]` still asks
/// for the rewrites of a selection alone.
pub const WRITE_KIND: &str = "refactor.write.storyteller";

/// The encoding of every position in this session: UTF-8 when the client offers it (no
/// conversion work on our side); UTF-32 when the client names it but not UTF-16; otherwise
/// UTF-16, which LSP makes mandatory and the default when the client says nothing.
pub fn negotiate_encoding(offered: Option<&[PositionEncodingKind]>) -> PositionEncoding {
    let offered = offered.unwrap_or_default();
    let offers = |kind: &PositionEncodingKind| offered.iter().any(|o| o == kind);
    if offers(&PositionEncodingKind::UTF8) {
        PositionEncoding::Utf8
    } else if offers(&PositionEncodingKind::UTF32) && !offers(&PositionEncodingKind::UTF16) {
        PositionEncoding::Utf32
    } else {
        PositionEncoding::Utf16
    }
}

/// The encoding a client asked for in its `initialize` params.
pub fn client_encoding(params: &InitializeParams) -> PositionEncoding {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|general| general.position_encodings.as_deref());
    negotiate_encoding(offered)
}

pub fn encoding_kind(encoding: PositionEncoding) -> PositionEncodingKind {
    match encoding {
        PositionEncoding::Utf8 => PositionEncodingKind::UTF8,
        PositionEncoding::Utf16 => PositionEncodingKind::UTF16,
        PositionEncoding::Utf32 => PositionEncodingKind::UTF32,
    }
}

pub fn server_capabilities(encoding: PositionEncoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding_kind(encoding)),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                will_save: None,
                will_save_wait_until: None,
                save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                    include_text: Some(false),
                })),
            },
        )),
        completion_provider: Some(CompletionOptions::default()),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![
                CodeActionKind::new(REWRITE_KIND),
                CodeActionKind::new(WRITE_KIND),
            ]),
            work_done_progress_options: WorkDoneProgressOptions::default(),
            resolve_provider: None,
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: StorytellerCommand::ALL
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
            work_done_progress_options: WorkDoneProgressOptions::default(),
        }),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        ..ServerCapabilities::default()
    }
}

pub fn server_info() -> ServerInfo {
    ServerInfo {
        name: env!("CARGO_PKG_NAME").to_string(),
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(names: &[&'static str]) -> Vec<PositionEncodingKind> {
        names.iter().map(|n| PositionEncodingKind::new(n)).collect()
    }

    #[test]
    fn encoding_negotiation_prefers_utf8_then_utf16() {
        let cases: &[(Option<&[&'static str]>, PositionEncoding)] = &[
            (None, PositionEncoding::Utf16),
            (Some(&[]), PositionEncoding::Utf16),
            (Some(&["utf-16"]), PositionEncoding::Utf16),
            (Some(&["utf-16", "utf-8"]), PositionEncoding::Utf8),
            (Some(&["utf-32", "utf-16", "utf-8"]), PositionEncoding::Utf8),
            (Some(&["utf-32", "utf-16"]), PositionEncoding::Utf16),
            (Some(&["utf-32"]), PositionEncoding::Utf32),
            (Some(&["latin-1"]), PositionEncoding::Utf16),
        ];
        for (offered, expected) in cases {
            let offered = offered.map(kinds);
            assert_eq!(
                negotiate_encoding(offered.as_deref()),
                *expected,
                "{offered:?}"
            );
        }
    }

    #[test]
    fn capabilities_announce_incremental_sync_and_every_command() {
        let caps = serde_json::to_value(server_capabilities(PositionEncoding::Utf8)).unwrap();
        assert_eq!(caps["positionEncoding"], "utf-8");
        assert_eq!(caps["textDocumentSync"]["change"], 2);
        assert_eq!(caps["textDocumentSync"]["openClose"], true);
        assert!(caps["textDocumentSync"]["save"].is_object());
        assert_eq!(
            caps["codeActionProvider"]["codeActionKinds"],
            serde_json::json!([REWRITE_KIND, WRITE_KIND])
        );
        let commands = caps["executeCommandProvider"]["commands"]
            .as_array()
            .unwrap();
        assert_eq!(commands.len(), StorytellerCommand::ALL.len());
        assert!(commands.contains(&"storyteller.providers.add".into()));
        assert_eq!(
            caps["workspace"]["workspaceFolders"]["changeNotifications"],
            true
        );
    }
}
