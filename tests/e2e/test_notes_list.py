"""``storyteller.notes.list`` over the protocol, on a copy of the salt-ledger workspace: what the
index holds (include modes, names, the story bible, a front-matter problem) and, at a position in
an open chapter, which notes a prompt there would carry and why."""

from __future__ import annotations

import asyncio
import pathlib
import shutil

import pytest
from conftest import PATIENCE, REPO_ROOT, TextModel, execute_command, initialize, rich_capabilities
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "salt-ledger"
INVALID_PARAMS = -32602
BROKEN_NOTE = "---\naliases: [Gannet\n---\n# The Gannet\nCole's old boat.\n"


@pytest.fixture
def workspace(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "salt-ledger"
    shutil.copytree(FIXTURE, root)
    (root / "notes" / "gannet.md").write_text(BROKEN_NOTE, encoding="utf-8")
    return root


async def notes_list(client: LanguageClient, arguments: dict | None = None) -> list[dict]:
    return (await execute_command(client, "storyteller.notes.list", arguments))["roots"]


async def indexed(client: LanguageClient, count: int) -> dict:
    """The one root's listing once the index (filled in the background at start) holds it."""

    async def poll() -> dict:
        while True:
            roots = await notes_list(client)
            if roots and len(roots[0]["notes"]) >= count:
                return roots[0]
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), PATIENCE)


def by_path(root: dict) -> dict[str, dict]:
    return {note["path"]: note for note in root["notes"]}


async def test_the_list_shows_what_the_index_holds(client: LanguageClient, workspace: pathlib.Path):
    await initialize(client, rich_capabilities(), workspace=workspace)
    root = await indexed(client, 25)
    assert pathlib.Path(root["root"]).resolve() == workspace.resolve()
    assert "places/**/*.md" in root["patterns"]
    notes = by_path(root)
    assert len(notes) == 25
    assert notes["notes/ideas-book-two.md"]["include"] == "never"
    assert notes["notes/style-sheet.md"]["include"] == "always"
    assert notes["notes/style-sheet.md"]["hasSummary"] is True
    assert notes["STORY.md"]["storyBible"] is True
    assert notes["characters/ezra-pike.md"]["names"][:2] == ["Ezra Pike", "harbourmaster"]
    assert "the harbourmaster" in notes["characters/ezra-pike.md"]["names"]
    assert notes["places/marrow-fen.md"]["chars"] > 0
    assert "atPosition" not in notes["places/marrow-fen.md"]
    # A broken front matter: still indexed, the problem named, its text kept.
    assert "YAML" in notes["notes/gannet.md"]["problem"]
    assert notes["notes/gannet.md"]["title"] == "The Gannet"
    assert all(n["problem"] is None for p, n in notes.items() if p != "notes/gannet.md")
    await client.shutdown_session()


async def test_at_a_position_each_note_says_whether_and_why(
    client: LanguageClient, workspace: pathlib.Path
):
    await initialize(client, rich_capabilities(), workspace=workspace)
    await indexed(client, 25)
    chapter = workspace / "chapters" / "chapter-02.md"
    text = chapter.read_text(encoding="utf-8")
    uri = chapter.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=text)
        )
    )
    cursor = text.index("Toby came") + len("Toby")
    position = TextModel(text, "utf-16").position(cursor)
    roots = await notes_list(client, {"uri": uri, "position": {"line": position.line, "character": position.character}})
    assert len(roots) == 1
    notes = by_path(roots[0])
    toby = notes["characters/tobias-hale.md"]["atPosition"]
    assert (toby["included"], toby["reason"], toby["name"], toby["matched"]) == (True, "mentioned", "Toby", "Toby")
    assert (toby["side"], toby["distance"]) == ("before", 0)
    assert '"Toby"' in toby["why"]
    never = notes["notes/ideas-book-two.md"]["atPosition"]
    assert (never["included"], never["reason"], never["rank"]) == (False, "never", None)
    always = notes["notes/style-sheet.md"]["atPosition"]
    assert (always["included"], always["reason"], always["rank"]) == (True, "always", 1)
    assert notes["places/gull-rock.md"]["atPosition"]["reason"] == "notMentioned"
    assert notes["places/marrow-fen.md"]["atPosition"]["included"] is False
    assert notes["STORY.md"]["atPosition"]["reason"] == "storyBible"
    # `Pike's` further on brings Ezra Pike's note, ranked after Toby's.
    pike = notes["characters/ezra-pike.md"]["atPosition"]
    assert (pike["reason"], pike["side"], pike["matched"]) == ("mentioned", "after", "Pike's")
    assert pike["rank"] > toby["rank"]

    # The uri alone: that document's workspace folder, no positions.
    roots = await notes_list(client, {"uri": uri})
    assert len(roots) == 1 and "atPosition" not in roots[0]["notes"][0]
    await client.shutdown_session()


async def test_arguments_are_checked_by_field(client: LanguageClient, workspace: pathlib.Path):
    await initialize(client, rich_capabilities(), workspace=workspace)
    cases = [
        ({"position": {"line": 0, "character": 0}}, "position"),
        ({"uri": "file:///nowhere/a.md", "position": {"line": 0, "character": 0}}, "uri"),
        ({"uri": 7}, "uri"),
        ({"colour": 1}, "colour"),
    ]
    for arguments, field in cases:
        with pytest.raises(JsonRpcException) as refused:
            await notes_list(client, arguments)
        assert refused.value.code == INVALID_PARAMS, arguments
        assert field in refused.value.message, (arguments, refused.value.message)
    # A document outside every workspace folder has no notes.
    assert await notes_list(client, {"uri": "file:///nowhere/a.md"}) == []
    await client.shutdown_session()
