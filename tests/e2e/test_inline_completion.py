"""Inline completion with the built binary over stdio and the simulator process: positions in
UTF-16 and UTF-8, debounce under a burst of keystrokes, cancellation that reaches the upstream
connection, and the completion fallback for clients without inline completion (Helix)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import (
    PATIENCE,
    RawServer,
    Simulator,
    TextModel,
    as_dict,
    initialize,
    rich_capabilities,
    synthetic,
    wait_until,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

URI = "file:///novel/chapter-1.md"

# Emoji (two UTF-16 units, four UTF-8 bytes) and CJK (three UTF-8 bytes) before the cursor.
MANUSCRIPT = (
    "# Chapter 1: Salt 🌊\n"
    "\n"
    "灯台守は船を数えた。 Mara climbed the stairs 🕯 of the lighthouse. The lamp was out.\n"
    "She waited by the window"
)


async def open_manuscript(client: LanguageClient, text: str = MANUSCRIPT) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=text)
        )
    )


def inline_params(position: types.Position, kind=types.InlineCompletionTriggerKind.Invoked):
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        position=position,
        context=types.InlineCompletionContext(trigger_kind=kind),
    )


async def chats(simulator: Simulator, provider: str = "openai") -> list[dict]:
    return [r for r in await simulator.requests(provider) if r["method"] == "POST"]


def items_of(result) -> list[types.InlineCompletionItem]:
    if result is None:
        return []
    return list(result.items if isinstance(result, types.InlineCompletionList) else result)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8"])
async def test_a_continuation_is_placed_at_the_cursor_in_the_negotiated_encoding(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, encoding: str
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    result = await initialize(ai_client, rich_capabilities(encoding), {"inline": {"debounceMs": 0}})
    assert result.capabilities.position_encoding == encoding
    await open_manuscript(ai_client)
    model = TextModel(MANUSCRIPT, encoding)
    # The cursor after "stairs 🕯 " on line 2: past the CJK and the emoji.
    index = MANUSCRIPT.index("of the lighthouse")
    cursor = model.position(index)
    # Automatic, as while typing: one suggestion, one provider call (an invoked request offers
    # alternatives: test_steering.py).
    answer = await asyncio.wait_for(
        ai_client.text_document_inline_completion_async(
            inline_params(cursor, types.InlineCompletionTriggerKind.Automatic)
        ),
        PATIENCE,
    )
    items = items_of(answer)
    assert len(items) == 1
    item = items[0]
    assert isinstance(item.insert_text, str) and item.insert_text.strip()
    assert item.range is not None and item.range.start == cursor and item.range.end == cursor
    assert item.command is not None and item.command.command == "storyteller.feedback"
    # The provider saw exactly the text before that cursor, and the text after it.
    [request] = await chats(simulator)
    prompt = request["body"]["messages"][0]["content"]
    assert MANUSCRIPT[:index] + "</text_before_cursor>" in prompt
    assert "<text_after_cursor>of the lighthouse. The lamp was out." in prompt
    await ai_client.shutdown_session()


async def test_twenty_rapid_keystrokes_reach_the_provider_at_most_twice(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    await initialize(ai_client, rich_capabilities())  # the default debounce: 120 ms
    await open_manuscript(ai_client)
    model = TextModel(MANUSCRIPT, "utf-16")
    pending = []
    for version in range(2, 22):
        change = model.edit(len(model.text), len(model.text), "s")
        ai_client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[change],
            )
        )
        cursor = model.position(len(model.text))
        pending.append(
            ai_client.text_document_inline_completion_async(
                inline_params(cursor, types.InlineCompletionTriggerKind.Automatic)
            )
        )
    answers = await asyncio.wait_for(asyncio.gather(*pending), PATIENCE)
    served = [len(items_of(a)) for a in answers]
    assert served[-1] == 1, served
    assert len(await chats(simulator)) <= 2
    await ai_client.shutdown_session()


async def test_cancelling_a_request_closes_the_upstream_connection(
    server_command: list[str], provider_env: dict[str, str], simulator: Simulator, configured_providers
):
    # Raw framing: this test chooses the request id it cancels.
    await configured_providers([("openai", simulator.endpoint("openai"))])
    await simulator.control("POST", "/_sim/latency", {"provider": "openai", "ms": 30000})
    server = await RawServer.start(server_command, provider_env)
    try:
        await server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "capabilities": {"textDocument": {"inlineCompletion": {}}},
            "initializationOptions": {"inline": {"debounceMs": 0, "timeoutMs": 60000}},
        }})
        await server.read_response(1)
        await server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        await server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": URI, "languageId": "markdown", "version": 1, "text": MANUSCRIPT}}})
        await server.send({"jsonrpc": "2.0", "id": 2, "method": "textDocument/inlineCompletion", "params": {
            "textDocument": {"uri": URI}, "position": {"line": 3, "character": 5},
            "context": {"triggerKind": 1}}})

        async def pending_upstream() -> bool:
            return any(r["outcome"] == "pending" for r in await chats(simulator))

        async def poll(check) -> None:
            while not await check():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(pending_upstream), PATIENCE)
        await server.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 2}})
        answer = await server.read_response(2)
        assert answer["error"]["code"] == -32800, answer

        async def disconnected() -> bool:
            return any(r["outcome"] == "disconnected" for r in await chats(simulator))

        await asyncio.wait_for(poll(disconnected), PATIENCE)
        await server.send({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
        await server.read_response(3)
        await server.send({"jsonrpc": "2.0", "method": "exit"})
        assert await server.wait() == 0
    finally:
        await server.stop()


async def test_clients_without_inline_completion_get_one_completion_item(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    # Helix-like: completion, no inline completion.
    capabilities = synthetic(
        general={"positionEncodings": ["utf-8"]},
        textDocument={"completion": {"completionItem": {"snippetSupport": False}}},
    )
    await initialize(ai_client, capabilities, {"inline": {"debounceMs": 0}})
    await open_manuscript(ai_client)
    model = TextModel(MANUSCRIPT, "utf-8")
    end = model.position(len(MANUSCRIPT))
    result = await asyncio.wait_for(
        ai_client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=end)
        ),
        PATIENCE,
    )
    items = result.items if isinstance(result, types.CompletionList) else result
    assert items is not None and len(items) == 1
    item = items[0]
    assert item.text_edit is not None
    assert item.text_edit.range.start == end and item.text_edit.range.end == end
    assert item.text_edit.new_text.strip()
    assert item.label and "\n" not in item.label
    assert item.command is not None and item.command.command == "storyteller.feedback"
    # Accepting it counts for the prompt.
    counted = await ai_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
    )
    assert as_dict(counted) == {"counted": True}
    await ai_client.shutdown_session()


async def test_clients_with_inline_completion_get_no_duplicate_completion_item(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    await initialize(ai_client, rich_capabilities(), {"inline": {"debounceMs": 0}})
    await open_manuscript(ai_client)
    end = TextModel(MANUSCRIPT, "utf-16").position(len(MANUSCRIPT))
    result = await ai_client.text_document_completion_async(
        types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=URI), position=end)
    )
    assert result is None or (result.items if isinstance(result, types.CompletionList) else result) == []
    await wait_until(lambda: True)
    assert await chats(simulator) == []
    await ai_client.shutdown_session()
