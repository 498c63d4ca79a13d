"""The author steers and chooses, with the built binary over stdio and the simulator process, in a
copy of the realistic workspace (tests/fixtures/salt-ledger): "Continue scene with…" offered to an
editor that can ask and run with the author's direction, which reaches the prompt the provider
receives; a free-text tone read as a style brief; invoked inline completion offering three
distinct alternatives where typing gets one; and a Helix-like client never offered an action it
cannot run. Prompts are captured at the simulator (``GET /_sim/requests``)."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import shutil

from conftest import (
    code_actions,
    PATIENCE,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    initialize,
    read_code_actions_by_shape,
    rich_capabilities,
    synthetic,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "salt-ledger"
HELIX = json.loads((pathlib.Path(__file__).parent / "clients" / "helix_v25.07.1.json").read_text())
CONTINUE_WITH = "storyteller.continueSceneWith"
NO_DEBOUNCE = {"inline": {"debounceMs": 0, "timeoutMs": 30000}}


def asking_editor() -> types.ClientCapabilities:
    """What the VS Code extension and the Neovim plugin announce, askInstruction included."""
    return rich_capabilities(
        experimental={"storyteller": {"openSettings": True, "statusNotification": True, "askInstruction": True}}
    )


async def open_chapter(client: LanguageClient, workspace: pathlib.Path, name: str) -> tuple[str, str]:
    path = workspace / "chapters" / name
    text = path.read_text()
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=text)
        )
    )
    return uri, text


async def start_in_workspace(
    client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path, capabilities
) -> pathlib.Path:
    workspace = tmp_path / "salt-ledger"
    shutil.copytree(FIXTURE, workspace)
    await configured_providers([("openai", simulator.endpoint("openai"))], root=workspace)
    await initialize(client, capabilities, NO_DEBOUNCE, workspace=workspace)
    return workspace


async def generate(client: LanguageClient, arguments: dict) -> dict:
    return as_dict(
        await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="storyteller.generate", arguments=[arguments])
            ),
            PATIENCE,
        )
    )


async def prompts(simulator: Simulator) -> list[str]:
    return [
        r["body"]["messages"][0]["content"]
        for r in await simulator.requests("openai")
        if r["method"] == "POST" and isinstance(r["body"], dict)
    ]


def words(text: str) -> list[str]:
    return [w.lower() for w in re.split(r"\W+", text) if w]


async def test_continue_scene_with_runs_the_authors_direction_into_the_prompt(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path
):
    workspace = await start_in_workspace(ai_client, simulator, configured_providers, tmp_path, asking_editor())
    recorder = Recorder(ai_client)
    uri, text = await open_chapter(ai_client, workspace, "chapter-02.md")
    end = TextModel(text, "utf-16").position(len(text))
    actions = await code_actions(ai_client, uri, types.Range(start=end, end=end))
    titles = [a.title for a in actions]
    assert titles[:2] == ["Continue scene", "Continue scene with…"], titles
    assert await simulator.requests() == [], "listing called a provider"
    with_ = actions[1]
    assert with_.kind == "refactor.write.storyteller"
    assert with_.command.command == CONTINUE_WITH
    # What the editor does with it: ask the author, then run storyteller.generate with the
    # command's arguments and the answer as `instruction`.
    arguments = dict(with_.command.arguments[0])
    assert arguments["action"] == "continueScene" and arguments["version"] == 1
    direction = "Wren finds the second ledger hidden under the tide-table, and says nothing."
    result = await generate(ai_client, {**arguments, "instruction": f"  {direction}\n"})
    assert result["applied"] is True, result
    assert recorder.edits, "the text was applied"
    [prompt] = await prompts(simulator)
    assert f"<author_direction>\n{direction}\n</author_direction>" in prompt
    assert "make it happen in this beat" in prompt

    # In the author's language, and with no direction the block stays empty.
    russian = "Мара молчит, но отдаёт Тобиасу ключ."
    result = await generate(
        ai_client,
        {"action": "expandWorldbuilding", "uri": uri, "range": as_dict(types.Range(start=end, end=end)),
         "instruction": russian},
    )
    assert result["applied"] is True, result
    captured = await prompts(simulator)
    assert f"<author_direction>\n{russian}\n</author_direction>" in captured[1]
    await ai_client.shutdown_session()


async def test_instruction_and_style_brief_errors_never_repeat_the_authors_words(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path
):
    workspace = await start_in_workspace(ai_client, simulator, configured_providers, tmp_path, asking_editor())
    uri, text = await open_chapter(ai_client, workspace, "chapter-01.md")
    at = TextModel(text, "utf-16").position(len(text))
    end = as_dict(types.Range(start=at, end=at))
    secret = "SENTINEL-the-drowned-clerk"
    cases = [
        ({"action": "continueScene", "uri": uri, "range": end, "instruction": (secret + " ") * 60}, "instruction"),
        ({"action": "rewriteSelection", "uri": uri, "range": end, "tone": secret + "\u0007"}, "tone"),
        ({"action": "rewriteSelection", "uri": uri, "range": end, "tone": secret * 10}, "tone"),
        ({"action": "suggestDialogue", "uri": uri, "range": end, "instruction": secret}, "instruction"),
    ]
    for arguments, field in cases:
        try:
            await generate(ai_client, arguments)
        except Exception as error:  # the JSON-RPC error, as pygls raises it
            message = str(error)
            assert field in message, message
            assert "SENTINEL" not in message, message
        else:
            raise AssertionError(f"{field} was accepted")
    assert await simulator.requests() == []
    await ai_client.shutdown_session()


async def test_a_free_text_tone_is_read_as_the_authors_style_brief(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path
):
    workspace = await start_in_workspace(ai_client, simulator, configured_providers, tmp_path, asking_editor())
    Recorder(ai_client)
    uri, text = await open_chapter(ai_client, workspace, "chapter-01.md")
    model = TextModel(text, "utf-16")
    paragraph = next(p for p in text.split("\n\n") if len(p) > 80 and not p.startswith("#"))
    sentence = paragraph.split(". ")[0] + "."
    start = text.index(sentence)
    selection = types.Range(start=model.position(start), end=model.position(start + len(sentence)))
    # The named tones stay the menu.
    offered = [a.title for a in await code_actions(ai_client, uri, selection)]
    assert offered[:5] == [f"Rewrite selection: {t}" for t in ("vivid", "concise", "tense", "lyrical", "plain")]
    result = await generate(
        ai_client,
        {"action": "rewriteSelection", "tone": "like Hemingway, terse", "uri": uri, "range": as_dict(selection)},
    )
    assert result["applied"] is True, result
    [prompt] = await prompts(simulator)
    assert "Requested tone: like Hemingway, terse\n" in prompt
    assert "it is the author's own style brief" in prompt
    assert f"<selection>\n{sentence}\n</selection>" in prompt
    await ai_client.shutdown_session()


async def test_asking_for_a_suggestion_offers_three_alternatives_and_typing_gets_one(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path
):
    workspace = await start_in_workspace(ai_client, simulator, configured_providers, tmp_path, asking_editor())
    uri, text = await open_chapter(ai_client, workspace, "chapter-03.md")
    end = TextModel(text, "utf-16").position(len(text))

    def inline(kind):
        return asyncio.wait_for(
            ai_client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=end,
                    context=types.InlineCompletionContext(trigger_kind=kind),
                )
            ),
            PATIENCE,
        )

    answer = await inline(types.InlineCompletionTriggerKind.Invoked)
    items = answer.items if isinstance(answer, types.InlineCompletionList) else answer
    # Three provider calls; as many items as distinct answers after cleaning (the simulator's
    # short answers here can coincide: a copy is never offered twice).
    sent = await prompts(simulator)
    assert len(sent) == 3, "one provider call per alternative"
    assert sum("alternative 2 of 3" in p for p in sent) == 1 and sum("alternative 3 of 3" in p for p in sent) == 1
    assert 2 <= len(items) <= 3, [i.insert_text for i in items]
    texts = [i.insert_text for i in items]
    assert len({tuple(words(t)) for t in texts}) == len(items), "distinct alternatives"
    ids = [i.command.arguments[0]["suggestionId"] for i in items]
    assert len(set(ids)) == len(items), "each alternative has its own suggestion id"
    assert all(i.command.command == "storyteller.feedback" for i in items)
    assert all(i.range.start == end and i.range.end == end for i in items)

    # Accepting the last is counted for it alone.
    counted = await ai_client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=items[-1].command.command, arguments=items[-1].command.arguments)
    )
    assert as_dict(counted) == {"counted": True}

    # While typing: one suggestion (here the first, served again without a provider call).
    answer = await inline(types.InlineCompletionTriggerKind.Automatic)
    items = answer.items if isinstance(answer, types.InlineCompletionList) else answer
    assert len(items) == 1
    assert len(await prompts(simulator)) == 3
    await ai_client.shutdown_session()


async def test_a_client_that_cannot_ask_is_never_offered_continue_scene_with(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path
):
    helix = synthetic(**HELIX["capabilities"])
    read_code_actions_by_shape(ai_client)

    # Helix accepts dynamic registrations (file watchers for the story notes).
    @ai_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        return None

    workspace = await start_in_workspace(ai_client, simulator, configured_providers, tmp_path, helix)
    uri, text = await open_chapter(ai_client, workspace, "chapter-01.md")
    model = TextModel(text, "utf-8")
    # Helix's block cursor: one character.
    last = model.position(len(text) - 1)
    end = model.position(len(text))
    actions = await code_actions(ai_client, uri, types.Range(start=last, end=end))
    titles = [a.title for a in actions]
    assert "Continue scene" in titles, titles
    assert not any("with…" in t for t in titles), titles
    assert all(a.command.command == "storyteller.generate" for a in actions)
    await ai_client.shutdown_session()
