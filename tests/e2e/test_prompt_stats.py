"""Acceptance that means something, with the built binary over stdio and the simulator process:
an applied action counts as accepted only when its text is still in the document at the next
save (undone at once → not accepted; kept → accepted), and ghost text taken in part (the author
types its first word) counts as a partial accept with its share. `storyteller.prompts.list`
shows the counts beside the rate and marks them as not yet meaningful. A workspace prompt with an
`action:` title is a code action of its workspace; one declaring a variable nobody supplies is
reported and not offered."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from conftest import (
    PATIENCE,
    Simulator,
    TextModel,
    as_dict,
    initialize,
    rich_capabilities,
    shown_message,
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


class Editor:
    """The editor's side: a text model, versions, and `workspace/applyEdit` applied to the model
    and sent back as `didChange` before answering (as VS Code does)."""

    def __init__(self, client: LanguageClient, uri: str = URI) -> None:
        self.client = client
        self.uri = uri
        self.model = TextModel(MANUSCRIPT, "utf-16")
        self.version = 1

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams):
            for change in params.edit.document_changes or []:
                for edit in change.edits:
                    start = self.model.index(edit.range.start.line, edit.range.start.character)
                    end = self.model.index(edit.range.end.line, edit.range.end.character)
                    self.change(start, end, edit.new_text)
            return types.ApplyWorkspaceEditResult(applied=True)

    def open(self) -> None:
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=self.uri, language_id="markdown", version=1, text=MANUSCRIPT)
            )
        )

    def change(self, start: int, end: int, text: str) -> None:
        change = self.model.edit(start, end, text)
        self.version += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
                content_changes=[change],
            )
        )

    def save(self) -> None:
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=self.uri))
        )

    def end(self) -> types.Position:
        return self.model.position(len(self.model.text))


async def execute(client: LanguageClient, command: str, arguments: dict[str, Any]) -> Any:
    return as_dict(
        await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=command, arguments=[arguments])
            ),
            PATIENCE,
        )
    )


async def stats(client: LanguageClient, name: str) -> dict[str, Any]:
    """The summed counts of every version of ``name`` in ``storyteller.prompts.list``."""
    listed = await execute(client, "storyteller.prompts.list", {})
    versions = [t for t in listed["templates"] if t["name"] == name]
    assert versions, listed
    total = {
        key: sum(t[key] for t in versions) for key in ("usageCount", "successCount", "partialCount")
    }
    total["meaningful"] = any(t["meaningful"] for t in versions)
    total["note"] = versions[0]["note"]
    return total


async def until_stats(client: LanguageClient, name: str, condition) -> dict[str, Any]:
    """Polls ``storyteller.prompts.list`` until ``condition`` holds (the judgement is written on a
    task after the save)."""
    seen: dict[str, Any] = {}

    async def poll() -> None:
        nonlocal seen
        while True:
            seen = await stats(client, name)
            if condition(seen):
                return
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), PATIENCE)
    except TimeoutError:
        raise AssertionError(f"{name}: {seen}") from None
    return seen


async def continue_scene(client: LanguageClient, editor: Editor) -> str:
    end = editor.end()
    result = await execute(
        client,
        "storyteller.generate",
        {"action": "continueScene", "uri": editor.uri, "range": as_dict(types.Range(start=end, end=end))},
    )
    assert result["applied"] is True, result
    assert editor.model.text.endswith(result["text"])
    return result["text"]


async def test_an_action_undone_at_once_is_not_accepted_and_one_kept_is(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    editor = Editor(ai_client)
    await initialize(ai_client, rich_capabilities())
    editor.open()

    # Applied, undone at once, saved: used, not accepted.
    text = await continue_scene(ai_client, editor)
    length = len(editor.model.text)
    editor.change(length - len(text), length, "")
    assert editor.model.text == MANUSCRIPT
    editor.save()
    await asyncio.sleep(0.3)
    counts = await stats(ai_client, "continue_scene")
    assert (counts["usageCount"], counts["successCount"]) == (1, 0), counts

    # Applied, kept (a word typed after it), saved: accepted.
    await continue_scene(ai_client, editor)
    editor.change(len(editor.model.text), len(editor.model.text), " Then")
    editor.save()
    counts = await until_stats(ai_client, "continue_scene", lambda s: s["successCount"] == 1)
    assert counts["usageCount"] == 2, counts
    assert counts["meaningful"] is False and "30" in counts["note"], counts
    await ai_client.shutdown_session()


async def test_ghost_text_taken_in_part_counts_as_a_partial_accept(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    editor = Editor(ai_client)
    await initialize(ai_client, rich_capabilities(), {"inline": {"debounceMs": 0}})
    editor.open()
    cursor = editor.end()
    answer = await asyncio.wait_for(
        ai_client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=cursor,
                # Automatic: one suggestion (an invoked request asks for up to three alternatives).
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            )
        ),
        PATIENCE,
    )
    items = answer.items if isinstance(answer, types.InlineCompletionList) else answer
    suggestion = items[0].insert_text
    assert isinstance(suggestion, str)
    first_word = re.match(r"\s*\S+", suggestion)
    assert first_word is not None and len(first_word.group(0)) < len(suggestion), suggestion
    before = await until_stats(ai_client, "inline_continuation", lambda s: s["usageCount"] == 1)
    assert before["partialCount"] == 0

    # The author types the suggestion's first word (what word accept does), then saves.
    length = len(editor.model.text)
    editor.change(length, length, first_word.group(0))
    editor.save()
    counts = await until_stats(ai_client, "inline_continuation", lambda s: s["partialCount"] == 1)
    assert counts["successCount"] == 0, counts
    listed = await execute(ai_client, "storyteller.prompts.list", {})
    [used] = [t for t in listed["templates"] if t["name"] == "inline_continuation" and t["usageCount"] == 1]
    share = len(first_word.group(0)) / len(suggestion)
    assert abs(used["successRate"] - share) < 1e-6, (used, share)
    await ai_client.shutdown_session()


async def test_a_workspace_prompt_with_an_action_title_is_a_code_action_that_runs(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path
):
    workspace = tmp_path / "novel"
    prompts = workspace / ".storyteller" / "prompts"
    prompts.mkdir(parents=True)
    (prompts / "weather.md").write_text(
        "---\nname: weather\nversion: 1\naction: Describe the weather\nplacement: cursor\n"
        "variables: [before]\n---\nHOUSE WEATHER after: {{before}}\n"
    )
    (prompts / "odd.md").write_text(
        "---\nname: odd\nversion: 1\naction: Odd one\nvariables: [mood]\n---\n{{mood}}\n"
    )
    await configured_providers([("openai", simulator.endpoint("openai"))], root=workspace)
    uri = (workspace / "chapter-1.md").as_uri()
    editor = Editor(ai_client, uri)
    await initialize(ai_client, rich_capabilities(), workspace=workspace)
    editor.open()
    end = editor.end()
    actions = await asyncio.wait_for(
        ai_client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(start=end, end=end),
                context=types.CodeActionContext(diagnostics=[]),
            )
        ),
        PATIENCE,
    )
    titles = [a.title for a in actions or []]
    assert titles == ["Continue scene", "Expand worldbuilding", "Describe the weather"], titles
    weather = actions[-1]
    assert weather.command is not None
    result = await execute(ai_client, weather.command.command, weather.command.arguments[0])
    assert result["applied"] is True, result
    [request] = [r for r in await simulator.requests("openai") if r["method"] == "POST"]
    assert request["body"]["messages"][0]["content"].startswith("HOUSE WEATHER after: # Chapter 1")
    # The template with an undeclared variable was reported (file and variable), not offered.
    warning = await shown_message(ai_client, "`mood`")
    assert "odd.md" in warning.message and warning.type == types.MessageType.Warning
    listed = await execute(ai_client, "storyteller.prompts.list", {})
    names = {t["name"]: t for t in listed["templates"]}
    assert "odd" not in names
    assert names["weather"]["action"] == "Describe the weather"
    await ai_client.shutdown_session()
