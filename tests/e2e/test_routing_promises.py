"""Routing promises of issue 15, over LSP with the built binary and the simulator process:
setPrimary takes effect on the next request after a failover (DESIGN.md §5), the "Trying backup
provider..." text while generating, residency decided by the endpoint's host, the consent asked
once per project before text leaves the EU, and plain HTTP only to loopback."""

from __future__ import annotations

import asyncio

from conftest import (
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
QUOTA_OPENAI = (
    "Your OpenAI API quota has been exhausted. Please upgrade your plan or switch to another provider."
)


def open_manuscript(client: LanguageClient) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=MANUSCRIPT)
        )
    )


async def continue_scene(client: LanguageClient):
    end = TextModel(MANUSCRIPT, "utf-16").position(len(MANUSCRIPT))
    return as_dict(
        await execute_command(
            client,
            "storyteller.generate",
            {"action": "continueScene", "uri": URI, "range": as_dict(types.Range(start=end, end=end))},
        )
    )


async def generation_requests(simulator: Simulator, provider: str) -> list:
    return [r for r in await simulator.requests(provider) if r["method"] == "POST"]


async def test_set_primary_after_a_failover_tries_the_primary_on_the_next_request(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [("openai", simulator.endpoint("openai")), ("claude", simulator.endpoint("claude"))]
    )
    await simulator.inject("openai", "quota")
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)

    first = await continue_scene(ai_client)
    assert first["applied"] is True and first["provider"] == "Anthropic Claude", first
    await wait_until(
        lambda: any(r.message == QUOTA_OPENAI for r in recorder.requests), "the first quota message"
    )
    providers = await execute_command(ai_client, "storyteller.providers.list")
    openai = next(p for p in providers if p["provider"] == "openai")

    # The author chooses OpenAI again: the next request must try it, not stay on Claude.
    await execute_command(ai_client, "storyteller.providers.setPrimary", {"id": openai["id"]})
    await simulator.clear_requests()
    quota_told = sum(r.message == QUOTA_OPENAI for r in recorder.requests)
    second = await continue_scene(ai_client)
    assert await generation_requests(simulator, "openai"), "OpenAI was not tried after setPrimary"
    assert second["provider"] == "Anthropic Claude", second
    await wait_until(
        lambda: sum(r.message == QUOTA_OPENAI for r in recorder.requests) > quota_told,
        "the quota message again, with Switch Provider",
    )
    told = [r for r in recorder.requests if r.message == QUOTA_OPENAI][-1]
    assert [a.title for a in told.actions] == ["Switch Provider"]
    await ai_client.shutdown_session()
