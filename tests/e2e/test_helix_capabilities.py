"""Helix against the real server: a pytest-lsp client announcing exactly what Helix 25.07.1 sends
(tests/e2e/clients/helix_v25.07.1.json: no inline completion, no window/showMessageRequest, the
`config` table of editors/helix/languages.toml as initializationOptions and as the answer to
workspace/configuration) gets the fallbacks DESIGN.md §3 promises such a client: the continuation
as one completion item, code actions applied with a versioned workspace edit, and plain messages
that name the `storyteller-lsp provider …` command where another editor would show buttons.

Keys go to the encrypted file of a per-test data dir (credentialStore "file" and a throwaway
STORYTELLER_CREDENTIALS_KEY); the providers are the simulator's, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import pathlib
import tomllib

import pytest
from conftest import (
    PATIENCE,
    Recorder,
    Simulator,
    as_dict,
    credentials_in_file,
    execute_command,
    read_code_actions_by_shape,
    shown_message,
    synthetic,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
HELIX = json.loads((pathlib.Path(__file__).parent / "clients" / "helix_v25.07.1.json").read_text())
CAPABILITIES = synthetic(**HELIX["capabilities"])
#: What Helix sends: the `config` table of the language server in the snippet, with the test's
#: store choice and inline timing.
SNIPPET_CONFIG = tomllib.loads((ROOT / "editors" / "helix" / "languages.toml").read_text())["language-server"][
    "storyteller"
]["config"]
CONFIG = {"storyteller": {**SNIPPET_CONFIG["storyteller"], "credentialStore": "file"}}
# No debounce; a budget a loaded CI machine cannot overrun (the default is 5 s).
CONFIG["storyteller"]["inline"] = {**CONFIG["storyteller"]["inline"], "debounceMs": 0, "timeoutMs": 30000}

CHAPTER = "# Chapter One\n\nMara pushed open the lighthouse door. The stairs spiralled up into the dark, and somewhere above her"
END = types.Position(line=2, character=len(CHAPTER.split("\n")[2].encode()))  # utf-8: ASCII line
#: What Helix sends for code actions: its primary selection, which in normal mode is the block
#: cursor, one character wide — here on the last letter typed.
BLOCK_CURSOR = types.Range(start=types.Position(line=END.line, character=END.character - 1), end=END)
NOT_CONFIGURED = "AI providers not configured. Would you like to set one up now?"
CLI_ADD = "Run `storyteller-lsp provider add` in a terminal to manage AI providers."


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    """The conftest environment (no vendor keys, a fresh data dir) with a throwaway file key."""
    return credentials_in_file(server_env)


async def start_helix(client: LanguageClient, root: pathlib.Path) -> Recorder:
    """`initialize` as Helix 25.07.1 does it, for a workspace at `root`."""
    read_code_actions_by_shape(client)
    recorder = Recorder(client)

    # Helix accepts dynamic registrations (file watchers for the story notes).
    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        return None

    client.set_configuration(CONFIG["storyteller"], section="storyteller")
    result = await asyncio.wait_for(
        client.initialize_session(
            types.InitializeParams(
                capabilities=CAPABILITIES,
                client_info=types.ClientInfo(**HELIX["clientInfo"]),
                root_uri=root.as_uri(),
                root_path=str(root),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
                initialization_options=CONFIG,
            )
        ),
        PATIENCE,
    )
    # Helix lists utf-8 first; the server takes it, so positions below are byte offsets.
    assert result.capabilities.position_encoding == "utf-8"
    assert result.capabilities.completion_provider is not None, "the completion fallback is advertised"
    return recorder


def open_chapter(client: LanguageClient, root: pathlib.Path, name: str = "chapter-01.md") -> str:
    uri = (root / name).as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=CHAPTER)
        )
    )
    return uri


async def add_provider(client: LanguageClient, simulator: Simulator) -> int:
    """What `storyteller-lsp provider add openai` does for a Helix user, through the same contract."""
    added = await execute_command(
        client,
        "storyteller.providers.add",
        {"provider": "openai", "apiKey": "sk-helix-good-key-2468", "endpoint": simulator.endpoint("openai"), "primary": True},
    )
    return added["id"]


async def code_actions(client: LanguageClient, uri: str) -> list[types.CodeAction]:
    actions = await asyncio.wait_for(
        client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=BLOCK_CURSOR,
                context=types.CodeActionContext(diagnostics=[]),
            )
        ),
        PATIENCE,
    )
    return [a for a in actions or [] if isinstance(a, types.CodeAction)]


async def test_helix_gets_the_continuation_as_one_completion_item(client, simulator, tmp_path):
    recorder = await start_helix(client, tmp_path)
    await add_provider(client, simulator)
    uri = open_chapter(client, tmp_path)
    completion = await asyncio.wait_for(
        client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=END)
        ),
        PATIENCE,
    )
    items = completion.items if isinstance(completion, types.CompletionList) else completion
    assert items is not None and len(items) == 1, f"one continuation item, got {items!r}"
    item = items[0]
    assert isinstance(item.text_edit, types.TextEdit), "the item inserts through a text edit"
    assert item.text_edit.range == types.Range(start=END, end=END), "at the cursor, in utf-8 columns"
    assert any(c.isalpha() for c in item.text_edit.new_text), "the item carries the continuation"
    # The menu shows the start of the continuation (shortened with an ellipsis).
    assert item.label and item.text_edit.new_text.strip().startswith(item.label.removesuffix("…"))
    assert item.command is not None and item.command.command == "storyteller.feedback"
    # Helix runs the item's command when the author picks it: the acceptance is counted once.
    assert await execute_command(client, item.command.command, item.command.arguments[0]) == {"counted": True}
    chats = [r for r in await simulator.requests("openai") if r["path"].endswith("/chat/completions")]
    assert len(chats) == 1, "one provider call for one completion request"
    assert recorder.requests == [], "no window/showMessageRequest to a client that did not announce it"


async def test_helix_code_actions_are_listed_and_applied_with_a_versioned_edit(client, simulator, tmp_path):
    recorder = await start_helix(client, tmp_path)
    await add_provider(client, simulator)
    uri = open_chapter(client, tmp_path)
    actions = await code_actions(client, uri)
    titles = [a.title for a in actions]
    # The block cursor is a cursor, not a one-letter passage to rewrite.
    assert titles == ["Continue scene", "Expand worldbuilding"], f"actions at the cursor (space a): {titles}"
    action = actions[titles.index("Continue scene")]
    assert action.kind == "refactor.write.storyteller"
    assert action.disabled is None, f"a configured provider leaves actions enabled: {action.disabled}"
    assert action.command is not None and action.command.command == "storyteller.generate"

    # Helix executes the action's command; the server writes the text with workspace/applyEdit.
    result = await execute_command(client, action.command.command, action.command.arguments[0])
    assert result["applied"] is True, result
    assert len(recorder.edits) == 1
    edit = recorder.edits[0].edit
    assert edit.changes is None, "Helix announces documentChanges: the edit is versioned"
    [change] = edit.document_changes
    assert change.text_document.uri == uri and change.text_document.version == 1
    [text_edit] = change.edits
    assert text_edit.range == types.Range(start=END, end=END), "inserted after the character under the cursor"
    assert text_edit.new_text == result["text"] and any(c.isalpha() for c in text_edit.new_text)
    assert recorder.requests == []


async def test_helix_not_configured_prompt_is_a_plain_message_naming_the_cli(client, tmp_path):
    recorder = await start_helix(client, tmp_path)
    uri = open_chapter(client, tmp_path)
    # Helix shows disabled actions with their reason.
    actions = await code_actions(client, uri)
    assert actions, "the actions are still listed"
    for action in actions:
        assert action.disabled is not None and action.disabled.reason == NOT_CONFIGURED, action.title
    # Asking for a continuation (Ctrl-x in Helix) brings the not-configured prompt, as text.
    completion = await asyncio.wait_for(
        client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=END)
        ),
        PATIENCE,
    )
    assert not completion, "nothing to complete without a provider"
    message = await shown_message(client, NOT_CONFIGURED)
    assert message.message == f"{NOT_CONFIGURED} {CLI_ADD}"
    assert recorder.requests == [], "no window/showMessageRequest to Helix 25.07"


async def test_helix_removal_needs_confirmation_and_names_the_cli(client, simulator, tmp_path):
    recorder = await start_helix(client, tmp_path)
    provider = await add_provider(client, simulator)
    with pytest.raises(JsonRpcException) as refused:
        await execute_command(client, "storyteller.providers.remove", {"id": provider})
    error = refused.value
    assert as_dict(error.data) == {"kind": "confirmationRequired"}
    assert f"`storyteller-lsp provider remove {provider}`" in error.message
    assert [p["id"] for p in await execute_command(client, "storyteller.providers.list")] == [provider]
    assert await execute_command(client, "storyteller.providers.remove", {"id": provider, "confirmed": True}) == {
        "removed": True,
        "primary": None,
    }
    assert await execute_command(client, "storyteller.providers.list") == []
    assert recorder.requests == []
