"""What the model is told, captured at the simulator: a realistic workspace (three chapters,
STORY.md, 23 notes with aliases, an `include: never` note, an `include: always` note, places) and
every prompt the server sends for ghost text and for each action.

Proves: the `never` note is in no prompt; an alias (`Toby`, `the harbourmaster`) brings its note;
notes that match nothing are absent (`Marrow End` does not bring `Marrow Fen`); STORY.md's voice
and the language line are in every prompt; the previous chapter's ending is there at the start of
a chapter, and not in the middle of one; a Russian manuscript is answered in Russian.

`scripts/prompt-sizes` runs the same session and prints the size of each prompt."""

from __future__ import annotations

import asyncio
import pathlib
import shutil
from typing import Any

from conftest import (
    PATIENCE,
    REPO_ROOT,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    initialize,
    rich_capabilities,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

FIXTURE = REPO_ROOT / "tests/fixtures/salt-ledger"

#: Text of notes that must never reach a model, or must only when named.
NEVER = ("Pike is Wren's father", "SPOILERS", "scuttled for the insurance")
STORY_VOICE = ("close third person, Wren Hale", "The tide came in grey and went out greyer")
ALWAYS = "British spelling"
CH2_ENDING = "She meant to\nbe there when they did."


def prompt_of(request: dict[str, Any]) -> str:
    """Every text the model was given in one OpenAI chat request."""
    body = request.get("body") or {}
    parts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(parts)


def copy_workspace(tmp_path: pathlib.Path) -> pathlib.Path:
    workspace = tmp_path / "salt-ledger"
    shutil.copytree(FIXTURE, workspace)
    return workspace


class Session:
    """An initialized session over the workspace, with helpers to ask for ghost text and run
    actions and to read back the prompt each one sent."""

    def __init__(self, client: LanguageClient, simulator: Simulator, workspace: pathlib.Path):
        self.client = client
        self.simulator = simulator
        self.workspace = workspace
        self.models: dict[str, TextModel] = {}

    def open(self, relative: str) -> str:
        path = self.workspace / relative
        text = path.read_text()
        uri = path.as_uri()
        self.models[uri] = TextModel(text, "utf-16")
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=text)
            )
        )
        return uri

    def position_after(self, uri: str, needle: str) -> types.Position:
        model = self.models[uri]
        return model.position(model.text.index(needle) + len(needle))

    def range_of(self, uri: str, needle: str) -> types.Range:
        model = self.models[uri]
        start = model.text.index(needle)
        return types.Range(start=model.position(start), end=model.position(start + len(needle)))

    async def last_prompt(self) -> str:
        requests = [r for r in await self.simulator.requests("openai") if r["method"] == "POST"]
        assert requests, "no provider request was made"
        prompt = prompt_of(requests[-1])
        await self.simulator.clear_requests()
        return prompt

    async def inline(self, uri: str, position: types.Position) -> str:
        await asyncio.wait_for(
            self.client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=position,
                    # As while typing: one provider request (an invoked one asks for alternatives).
                    context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
                )
            ),
            PATIENCE,
        )
        return await self.last_prompt()

    async def action(self, uri: str, action: str, range_: types.Range, **extra: Any) -> str:
        arguments = {"action": action, "uri": uri, "range": as_dict(range_), **extra}
        await asyncio.wait_for(
            self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="storyteller.generate", arguments=[arguments])
            ),
            PATIENCE,
        )
        return await self.last_prompt()


async def start(client: LanguageClient, simulator: Simulator, configured_providers, workspace: pathlib.Path) -> Session:
    await configured_providers([("openai", simulator.endpoint("openai"))], root=workspace)
    Recorder(client, applied=False)
    await initialize(
        client,
        rich_capabilities(),
        options={"inline": {"debounceMs": 0}, "actions": {"timeoutMs": 15000}},
        workspace=workspace,
    )
    client.initialized(types.InitializedParams())
    session = Session(client, simulator, workspace)
    # The notes are indexed off the start-up path: wait until the index holds them.
    for _ in range(200):
        try:
            listed = await asyncio.wait_for(
                client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command="storyteller.notes.list", arguments=[{}])
                ),
                PATIENCE,
            )
        except Exception:  # noqa: BLE001 - a server without the command: give it a moment
            await asyncio.sleep(1.0)
            break
        if "Ezra Pike" in str(as_dict(listed)):
            break
        await asyncio.sleep(0.05)
    return session


async def collect_prompts(session: Session) -> dict[str, str]:
    """Ghost text at three places and every action, in the workspace's chapters."""
    prompts: dict[str, str] = {}
    ch1 = session.open("chapters/chapter-01.md")
    ch2 = session.open("chapters/chapter-02.md")
    ch3 = session.open("chapters/chapter-03.md")
    mid_ch1 = session.position_after(ch1, "Ezra Pike\nlit it when he wanted to be left alone")
    mid_ch2 = session.position_after(ch2, "whistling the tune his father had hated.")
    end_ch3 = session.position_after(ch3, "Wren climbed them")

    prompts["inline: chapter 1, middle"] = await session.inline(ch1, mid_ch1)
    prompts["inline: chapter 2, middle"] = await session.inline(ch2, mid_ch2)
    prompts["inline: chapter 3, start"] = await session.inline(ch3, end_ch3)
    cursor = types.Range(start=end_ch3, end=end_ch3)
    prompts["continueScene: chapter 3, start"] = await session.action(ch3, "continueScene", cursor)
    prompts["expandWorldbuilding: chapter 1, middle"] = await session.action(
        ch1, "expandWorldbuilding", types.Range(start=mid_ch1, end=mid_ch1)
    )
    prompts["rewriteSelection: chapter 1"] = await session.action(
        ch1,
        "rewriteSelection",
        session.range_of(ch1, "The tide came in grey over the breakwater of Marrow End."),
        tone="vivid",
    )
    prompts["suggestDialogue: chapter 2"] = await session.action(
        ch2,
        "suggestDialogue",
        session.range_of(ch2, "She did not ask which book."),
    )
    prompts["describeCharacter: chapter 1"] = await session.action(
        ch1, "describeCharacter", session.range_of(ch1, "Ezra Pike")
    )
    return prompts


async def test_every_prompt_carries_the_voice_the_language_and_only_the_notes_the_scene_names(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path
):
    workspace = copy_workspace(tmp_path)
    session = await start(ai_client, simulator, configured_providers, workspace)
    prompts = await collect_prompts(session)

    for label, prompt in prompts.items():
        for secret in NEVER:
            assert secret not in prompt, f"{label}: the `never` note reached the model"
        for voice in STORY_VOICE:
            assert voice in prompt, f"{label}: STORY.md's voice is missing ({voice!r})"
        assert "Write in English" in prompt, f"{label}: no language line"
        assert ALWAYS in prompt, f"{label}: the `always` note is missing"
        # Named by nothing near any of these cursors.
        for unmatched in ("A bare island two miles out", "Hears everything through the floorboards"):
            assert unmatched not in prompt, f"{label}: an unmatched note was sent ({unmatched!r})"

    chapter_1 = prompts["inline: chapter 1, middle"]
    # "the harbourmaster" / "Ezra Pike" in the text bring Ezra Pike's note (aliases, lower case).
    assert "Harbourmaster of Marrow End for twenty years" in chapter_1
    # "Marrow End" brings its note, and not "Marrow Fen" by one shared word.
    assert "one breakwater, one tower" in chapter_1
    assert "Eel traps" not in chapter_1
    # The first chapter has no previous chapter.
    assert CH2_ENDING not in chapter_1

    # "Toby" (an alias) brings Tobias Hale's note.
    assert "Digs mussels at low water" in prompts["inline: chapter 2, middle"]

    # At the start of chapter 3: the end of chapter 2, for ghost text and the action alike.
    for label in ("inline: chapter 3, start", "continueScene: chapter 3, start"):
        assert CH2_ENDING in prompts[label], f"{label}: the previous chapter's ending is missing"
    assert "Ninety-one\nsteps" in prompts["continueScene: chapter 3, start"]  # "tower" (alias)
    await ai_client.shutdown_session()


async def test_prompt_sizes_report(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, tmp_path: pathlib.Path
):
    """Not a check: with STORYTELLER_PROMPT_SIZES=FILE, writes the size of every prompt of the
    session above to FILE (scripts/prompt-sizes). Skipped otherwise."""
    import os

    import pytest

    target = os.environ.get("STORYTELLER_PROMPT_SIZES")
    if not target:
        pytest.skip("set STORYTELLER_PROMPT_SIZES=FILE to write the prompt sizes")
    session = await start(ai_client, simulator, configured_providers, copy_workspace(tmp_path))
    prompts = await collect_prompts(session)
    with open(target, "w") as out:
        for label, prompt in prompts.items():
            out.write(f"{label}\t{len(prompt)}\n")
    dump = os.environ.get("STORYTELLER_PROMPT_DUMP")
    if dump:
        with open(dump, "w") as out:
            for label, prompt in prompts.items():
                out.write(f"===== {label}\n{prompt}\n")
    await ai_client.shutdown_session()


RUSSIAN = (
    "# Глава 3\n\n"
    "Мара поднялась по лестнице маяка. Лампа не горела, и Куэйл так и не вернулся с берега. "
    "Она долго стояла у окна и смотрела, как туман ложится на воду"
)


async def test_a_russian_manuscript_is_answered_in_russian(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([("openai", simulator.endpoint("openai"))])
    Recorder(ai_client, applied=False)
    await initialize(ai_client, rich_capabilities(), options={"inline": {"debounceMs": 0}})
    session = Session(ai_client, simulator, pathlib.Path("/roman"))
    uri = "file:///roman/glava-3.md"
    session.models[uri] = TextModel(RUSSIAN, "utf-16")
    ai_client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=RUSSIAN)
        )
    )
    end = session.models[uri].position(len(RUSSIAN))
    inline = await session.inline(uri, end)
    assert "Write in Russian" in inline
    assert "<chapter_heading>\nГлава 3\n</chapter_heading>" in inline  # read as a heading
    action = await session.action(uri, "continueScene", types.Range(start=end, end=end))
    assert "Write in Russian" in action
    await ai_client.shutdown_session()
