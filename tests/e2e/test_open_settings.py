"""The buttons of a key problem open that provider's edit form: "Update Key" (revoked key) and
"Open Settings" (invalid key) send ``storyteller/openSettings`` with the provider's id
(``providerId``) and the reason, to an editor that announced ``openSettings``."""

from __future__ import annotations

import asyncio

import pytest
from conftest import (
    PATIENCE,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    execute_command,
    initialize,
    rich_capabilities,
    wait_until,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

URI = "file:///novel/chapter-1.md"
MANUSCRIPT = "# Chapter 1\n\nMara climbed the stairs of the lighthouse. She waited by the window."


@pytest.mark.parametrize(
    ("worked_first", "text", "button", "reason"),
    [
        # A key that answered earlier in the session and is then refused was revoked.
        (True, "The API key for Google Gemini is no longer valid.", "Update Key", "keyRevoked"),
        (False, "The API key for Google Gemini is invalid.", "Open Settings", "invalidKey"),
    ],
)
async def test_a_key_problem_opens_the_edit_form_of_its_provider(
    ai_client: LanguageClient,
    simulator: Simulator,
    configured_providers,
    worked_first: bool,
    text: str,
    button: str,
    reason: str,
):
    # Gemini is the second row: its id is not the first one, so a default cannot pass for it.
    await configured_providers(
        [("openai", simulator.endpoint("openai")), ("gemini", simulator.endpoint("gemini"))]
    )
    recorder = Recorder(ai_client)
    recorder.presses[text] = button
    await initialize(ai_client, rich_capabilities())
    listed = await execute_command(ai_client, "storyteller.providers.list")
    gemini = next(p["id"] for p in listed if p["provider"] == "gemini")
    assert gemini != next(p["id"] for p in listed if p["provider"] == "openai")
    await execute_command(ai_client, "storyteller.providers.setPrimary", {"id": gemini})
    ai_client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=MANUSCRIPT)
        )
    )
    end = TextModel(MANUSCRIPT, "utf-16").position(len(MANUSCRIPT))

    async def continue_scene() -> dict:
        return as_dict(
            await asyncio.wait_for(
                ai_client.workspace_execute_command_async(
                    types.ExecuteCommandParams(
                        command="storyteller.generate",
                        arguments=[
                            {
                                "action": "continueScene",
                                "uri": URI,
                                "range": as_dict(types.Range(start=end, end=end)),
                            }
                        ],
                    )
                ),
                PATIENCE,
            )
        )

    if worked_first:
        first = await continue_scene()
        assert first.get("provider") == "Google Gemini", first
    await simulator.inject("gemini", "invalid_key")
    await continue_scene()
    await wait_until(lambda: recorder.notifications.get("storyteller/openSettings"), "openSettings")
    assert any(text in r.message for r in recorder.requests)
    assert recorder.notifications["storyteller/openSettings"] == [{"reason": reason, "providerId": gemini}]
    await ai_client.shutdown_session()
