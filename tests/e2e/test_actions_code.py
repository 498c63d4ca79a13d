"""Code actions with the built binary over stdio and the simulator process: listing calls no
provider, running an action reports progress and applies a versioned edit, and an edit made by
the author while the text is generated is never overwritten."""

from __future__ import annotations

import asyncio

from conftest import (
    code_actions,
    PATIENCE,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    initialize,
    rich_capabilities,
    shown_message,
    wait_until,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

URI = "file:///novel/chapter-1.md"
MANUSCRIPT = (
    "# Chapter 1: Salt\n"
    "\n"
    "Mara climbed the stairs of the lighthouse. The lamp was out, and Tomas had not come back.\n"
    "She waited by the window."
)
SELECTED = "The lamp was out, and Tomas had not come back."
EDIT_CONFLICT = (
    "The text changed while the suggestion was being written, so it was not applied. Run the action again."
)


def open_manuscript(client: LanguageClient) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=MANUSCRIPT)
        )
    )


def selection(model: TextModel) -> types.Range:
    start = model.text.index(SELECTED)
    return types.Range(start=model.position(start), end=model.position(start + len(SELECTED)))


async def run(client: LanguageClient, action: types.CodeAction):
    assert action.command is not None
    return as_dict(
        await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
            ),
            PATIENCE,
        )
    )


async def test_listing_calls_no_provider_and_running_applies_a_versioned_edit(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    model = TextModel(MANUSCRIPT, "utf-16")

    on_selection = await code_actions(ai_client, URI, selection(model))
    assert [a.title for a in on_selection] == [
        "Rewrite selection: vivid",
        "Rewrite selection: concise",
        "Rewrite selection: tense",
        "Rewrite selection: lyrical",
        "Rewrite selection: plain",
        "Suggest dialogue",
        "Describe character",
    ]
    assert {a.kind for a in on_selection} == {"refactor.rewrite.storyteller", "refactor.write.storyteller"}
    end = model.position(len(MANUSCRIPT))
    at_cursor = await code_actions(ai_client, URI, types.Range(start=end, end=end))
    assert [a.title for a in at_cursor] == ["Continue scene", "Expand worldbuilding"]
    assert await simulator.requests() == [], "listing actions called a provider"

    result = await run(ai_client, at_cursor[0])
    assert result["applied"] is True, result
    [edit] = recorder.edits
    change = edit.edit.document_changes[0]
    assert change.text_document.uri == URI and change.text_document.version == 1
    assert change.edits[0].range == types.Range(start=end, end=end)
    assert change.edits[0].new_text == result["text"]
    assert len(await simulator.requests("openai")) == 1

    # Progress: begun with the action's title, ended.
    await wait_until(
        lambda: any(
            isinstance(v, types.WorkDoneProgressEnd) for reports in ai_client.progress_reports.values() for v in reports
        ),
        "the progress to end",
    )
    [(token, reports)] = ai_client.progress_reports.items()
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].title == "Continue scene"
    assert reports[0].cancellable is True

    # A rewrite replaces exactly the selection.
    rewrite = next(a for a in on_selection if a.title == "Rewrite selection: concise")
    result = await run(ai_client, rewrite)
    assert result["applied"] is True, result
    assert recorder.edits[-1].edit.document_changes[0].edits[0].range == selection(model)
    await ai_client.shutdown_session()


async def test_an_edit_inside_the_selection_during_generation_is_never_overwritten(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    await simulator.control("POST", "/_sim/latency", {"provider": "openai", "ms": 1500})
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    model = TextModel(MANUSCRIPT, "utf-16")
    [rewrite, *_] = await code_actions(ai_client, URI, selection(model))
    running = asyncio.ensure_future(run(ai_client, rewrite))

    async def generating() -> None:
        while not [r for r in await simulator.requests("openai") if r["outcome"] == "pending"]:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(generating(), PATIENCE)
    # The author changes a word of the selected sentence meanwhile.
    word = MANUSCRIPT.index("out,")
    change = model.edit(word, word + 3, "lit")
    ai_client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2), content_changes=[change]
        )
    )
    result = await running
    assert result == {"applied": False, "action": "rewriteSelection", "reason": "conflict"}
    assert recorder.edits == [], "an edit was sent over the author's text"
    message = await shown_message(ai_client, EDIT_CONFLICT)
    assert message.message == EDIT_CONFLICT
    await ai_client.shutdown_session()


async def test_an_edit_elsewhere_during_generation_is_followed(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    await simulator.control("POST", "/_sim/latency", {"provider": "openai", "ms": 1500})
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    model = TextModel(MANUSCRIPT, "utf-16")
    [rewrite, *_] = await code_actions(ai_client, URI, selection(model))
    running = asyncio.ensure_future(run(ai_client, rewrite))

    async def generating() -> None:
        while not [r for r in await simulator.requests("openai") if r["outcome"] == "pending"]:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(generating(), PATIENCE)
    # A new line at the top: the selection moves down one line.
    change = model.edit(0, 0, "Draft two\n")
    ai_client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2), content_changes=[change]
        )
    )
    result = await running
    assert result["applied"] is True, result
    [edit] = recorder.edits
    document_change = edit.edit.document_changes[0]
    assert document_change.text_document.version == 2
    assert document_change.edits[0].range == selection(model)
    await ai_client.shutdown_session()
