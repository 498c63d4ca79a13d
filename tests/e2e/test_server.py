"""The built server over stdio with a real LSP client (pytest-lsp): lifecycle, position
encodings, incremental sync checked against a Python model, settings warnings, logs."""

from __future__ import annotations

import pathlib

import pytest
from conftest import (
    CLIENTS,
    TextModel,
    document_state,
    exit_code,
    initialize,
    shown_message,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

MANUSCRIPT = (
    "# Chapter 1\r\n"
    "\r\n"
    "The lighthouse keeper 🕯 counted the ships.\r\n"
    "灯台守は船を数えた。\n"
    "Waves 🌊🌊 broke on the rocks.\r"
    "The end."
)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("bare", "utf-16"),
        ("utf-16", "utf-16"),
        ("utf-8", "utf-8"),
        ("utf-32", "utf-32"),
        ("vscode", "utf-16"),
        ("neovim-0.11", "utf-8"),
        ("emacs-29", "utf-8"),
    ],
)
async def test_initialize_negotiates_the_position_encoding(
    client: LanguageClient, variant: str, expected: str
):
    result = await initialize(client, CLIENTS[variant])
    capabilities = result.capabilities
    assert capabilities.position_encoding == expected
    assert capabilities.inline_completion_provider is True
    assert capabilities.text_document_sync.change == types.TextDocumentSyncKind.Incremental
    assert result.server_info.name == "storyteller-lsp"
    await client.shutdown_session()
    assert exit_code(client) == 0


@pytest.mark.parametrize("variant", ["utf-16", "utf-8", "utf-32"])
async def test_incremental_edits_with_emoji_and_crlf_match_the_model(
    client: LanguageClient, variant: str
):
    result = await initialize(client, CLIENTS[variant])
    encoding = result.capabilities.position_encoding
    uri = "file:///novel/chapter-1.md"
    model = TextModel(MANUSCRIPT, encoding)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="markdown", version=1, text=model.text
            )
        )
    )
    assert await document_state(client, uri) == model.expected_state(1)

    emoji = model.text.index("🕯")
    cjk = model.text.index("船")
    waves = model.text.index("🌊")
    crlf = model.text.index("\r\n")
    edits = [
        # Replace an emoji, insert after CJK, delete across an astral pair.
        [lambda: model.edit(emoji, emoji + 1, "🔦")],
        [lambda: model.edit(cjk + 1, cjk + 1, "と星")],
        [lambda: model.edit(waves, waves + 2, "")],
        # Split the CRLF of the first line's ending from both sides, then join lines.
        [lambda: model.edit(crlf, crlf, " (draft)"), lambda: model.edit(0, 2, "")],
        [lambda: model.edit(len(model.text), len(model.text), "\r\nEpilogue 🎬")],
        # Several changes in one notification, each relative to the previous.
        [
            lambda: model.edit(0, 0, "😀"),
            lambda: model.edit(1, 1, "\n"),
            lambda: model.edit(len(model.text) - 1, len(model.text), "🏁"),
        ],
    ]
    for version, changes in enumerate(edits, start=2):
        content_changes = [make() for make in changes]
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=content_changes,
            )
        )
        assert await document_state(client, uri) == model.expected_state(version), (
            f"after edit set {version}"
        )

    await client.shutdown_session()
    assert exit_code(client) == 0


async def test_invalid_settings_are_shown_once_naming_the_key(client: LanguageClient):
    await initialize(
        client,
        CLIENTS["bare"],
        options={"storyteller": {"inline": {"debounceMs": "soon"}, "languages": ["markdown"]}},
    )
    await shown_message(client, "debounceMs")
    warnings = [m for m in client.messages if m.type == types.MessageType.Warning]
    assert len(warnings) == 1
    assert "storyteller.inline.debounceMs" in warnings[0].message
    await client.shutdown_session()


async def test_a_refused_change_is_reported_and_the_document_kept(client: LanguageClient):
    await initialize(client, CLIENTS["utf-16"])
    uri = "file:///novel/notes.md"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="markdown", version=1, text="one line"
            )
        )
    )
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=9, character=0),
                        end=types.Position(line=9, character=0),
                    ),
                    text="x",
                )
            ],
        )
    )
    state = await document_state(client, uri)
    assert state["version"] == 1
    assert state["inSync"] is False
    assert state == {**TextModel("one line", "utf-16").expected_state(1), "inSync": False}
    warning = await shown_message(client, "notes.md")
    assert warning.type == types.MessageType.Warning
    await client.shutdown_session()


async def test_logs_go_to_the_data_dir_without_manuscript_text(
    client: LanguageClient, data_dir: pathlib.Path
):
    await initialize(client, CLIENTS["vscode"])
    secret = "The lighthouse keeper buried the map under the third stair"
    uri = "file:///novel/secret.md"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="markdown", version=1, text=secret
            )
        )
    )
    # A refused change (inside the emoji-free text but past the last line) is logged.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(
                        start=types.Position(line=5, character=0),
                        end=types.Position(line=5, character=0),
                    ),
                    text=secret,
                )
            ],
        )
    )
    await document_state(client, uri)
    await client.shutdown_session()
    logs = list((data_dir / "logs").glob("storyteller*.log"))
    assert logs, f"no log file in {data_dir / 'logs'}"
    content = "".join(p.read_text(encoding="utf-8") for p in logs)
    assert "initialize" in content
    assert "secret.md" in content
    assert "lighthouse" not in content
