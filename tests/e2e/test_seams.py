"""The answer-cleaning stage through the built binary over stdio and the simulator process: the
simulator answers with replies shaped like real chat models' (preambles, sign-offs, quoted
dialogue, capitals mid-sentence), and each test asserts the exact text that lands in the
document, for ghost text and for every action."""

from __future__ import annotations

import asyncio

import pytest
from conftest import (
    code_actions,
    PATIENCE,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    initialize,
    rich_capabilities,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

URI = "file:///novel/chapter-1.md"


def open_document(client: LanguageClient, text: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=text)
        )
    )


def items_of(result) -> list[types.InlineCompletionItem]:
    if result is None:
        return []
    return list(result.items if isinstance(result, types.InlineCompletionList) else result)


@pytest.mark.parametrize(
    ("document", "reply", "ghost"),
    [
        pytest.param(
            "# Chapter 1\n\nShe waited by the window.",
            "Here is the continuation:\n\nThe rain came down harder.",
            " The rain came down harder.",
            id="preamble",
        ),
        pytest.param(
            "# Chapter 1\n\nShe opened the ledger and",
            "For a long moment she said nothing.",
            " for a long moment she said nothing.",
            id="capital-mid-sentence",
        ),
        pytest.param("# Chapter 1\n\nThe lighthou", "se keeper slept.", "se keeper slept.", id="mid-word"),
        pytest.param("# Chapter 1\n\nShe pulled on one bo", "boot, then the other.", "ot, then the other.", id="overlap"),
        pytest.param(
            "# Chapter 1\n\nMara turned to the stranger.",
            "“Who told you we were here?”",
            " “Who told you we were here?”",
            id="dialogue-keeps-quotes",
        ),
    ],
)
async def test_ghost_text_is_cleaned_and_joined(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, document: str, reply: str, ghost: str
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    await initialize(ai_client, rich_capabilities(), {"inline": {"debounceMs": 0}})
    open_document(ai_client, document)
    await simulator.script_replies("openai", [reply])
    cursor = TextModel(document, "utf-16").position(len(document))
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
    [item] = items_of(answer)
    assert item.insert_text == ghost
    assert item.range is not None and item.range.start == cursor and item.range.end == cursor
    await ai_client.shutdown_session()


def applied(model: TextModel, edit: types.ApplyWorkspaceEditParams) -> str:
    """The document once the editor applied ``edit`` (one text edit)."""
    [change] = edit.edit.document_changes
    [text_edit] = change.edits
    start = model.index(text_edit.range.start.line, text_edit.range.start.character)
    end = model.index(text_edit.range.end.line, text_edit.range.end.character)
    return model.text[:start] + text_edit.new_text + model.text[end:]


@pytest.mark.parametrize(
    ("title", "document", "selected", "reply", "expected"),
    [
        pytest.param(
            "Continue scene",
            "# Chapter 1\n\nShe waited by the window.\n\nThe harbour was quiet.",
            "",  # the cursor at the end of the first paragraph
            "The rain came down harder.",
            "# Chapter 1\n\nShe waited by the window.\n\nThe rain came down harder.\n\nThe harbour was quiet.",
            id="continueScene-new-paragraph",
        ),
        pytest.param(
            "Rewrite selection: concise",
            'Mara stood up. "Close the door, Wren." He did not move.',
            '"Close the door, Wren."',
            'Sure! Here\'s a tighter version:\n\n"Shut the door, Wren."',
            'Mara stood up. "Shut the door, Wren." He did not move.',
            id="rewriteSelection-keeps-quotes",
        ),
        pytest.param(
            "Suggest dialogue",
            "Mara stood up. They stood at the door. He did not move.",
            "They stood at the door.",
            "Here is some dialogue:\n\n“Who told you we were here?” Tomas asked.\n\nI hope this helps!",
            "Mara stood up. “Who told you we were here?” Tomas asked. He did not move.",
            id="suggestDialogue-preamble",
        ),
        pytest.param(
            "Describe character",
            '"My name is Sabine Orlov. I rent the room upstairs." She smiled.',
            "Sabine Orlov",
            "Up close she was older than her voice, grey at the temples.",
            '"My name is Sabine Orlov. I rent the room upstairs." Up close she was older than her voice,'
            " grey at the temples. She smiled.",
            id="describeCharacter-after-the-sentence",
        ),
        pytest.param(
            "Expand worldbuilding",
            "The harbour of Marrow End faced north.",
            "",
            "Its wall was built of black basalt, older than the town.\n\n"
            "(This keeps the tone consistent with your story notes.)",
            "The harbour of Marrow End faced north.\n\nIts wall was built of black basalt, older than the town.",
            id="expandWorldbuilding-commentary",
        ),
    ],
)
async def test_each_action_lands_clean_text(
    ai_client: LanguageClient,
    simulator: Simulator,
    configured_providers,
    title: str,
    document: str,
    selected: str,
    reply: str,
    expected: str,
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_document(ai_client, document)
    model = TextModel(document, "utf-16")
    if selected:
        start = document.index(selected)
        range_ = types.Range(start=model.position(start), end=model.position(start + len(selected)))
    else:
        cursor = document.index("window.") + len("window.") if "window." in document else len(document)
        range_ = types.Range(start=model.position(cursor), end=model.position(cursor))
    await simulator.script_replies("openai", [reply])
    action = next(a for a in await code_actions(ai_client, URI, range_) if a.title == title)
    assert action.command is not None
    result = as_dict(
        await asyncio.wait_for(
            ai_client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
            ),
            PATIENCE,
        )
    )
    assert result["applied"] is True, result
    [edit] = recorder.edits
    assert applied(model, edit) == expected
    await ai_client.shutdown_session()
