"""What the author is told, with the built binary and the simulator process: the exact texts of
DESIGN.md §7 for failover (with its button), all providers failing (Retry, Configure Providers),
being offline, and the not-configured prompt (once, only when AI is asked for); the status
notification; clients without message buttons get the CLI command instead."""

from __future__ import annotations

import asyncio

from conftest import (
    PATIENCE,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    initialize,
    rich_capabilities,
    synthetic,
    unreachable_endpoint,
    wait_until,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

URI = "file:///novel/chapter-1.md"
MANUSCRIPT = "# Chapter 1\n\nMara climbed the stairs of the lighthouse. She waited by the window."

# DESIGN.md §7, verbatim.
NOT_CONFIGURED = "AI providers not configured. Would you like to set one up now?"
ALL_FAILED = (
    "All configured AI providers are unavailable. Please check your internet connection or provider status."
)
OFFLINE = (
    "AI features require an internet connection. You can continue writing and use AI features when you're back online."
)


def failover(backup: str) -> str:
    return f"Primary provider unavailable. Switched to {backup}."


def open_manuscript(client: LanguageClient) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=MANUSCRIPT)
        )
    )


def end_of_text() -> types.Range:
    end = TextModel(MANUSCRIPT, "utf-16").position(len(MANUSCRIPT))
    return types.Range(start=end, end=end)


async def continue_scene(client: LanguageClient):
    return as_dict(
        await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="storyteller.generate",
                    arguments=[{"action": "continueScene", "uri": URI, "range": as_dict(end_of_text())}],
                )
            ),
            PATIENCE,
        )
    )


async def test_failover_is_told_with_its_exact_text_and_button(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [("openai", simulator.endpoint("openai")), ("claude", simulator.endpoint("claude"))]
    )
    await simulator.inject("openai", "unavailable")
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    result = await continue_scene(ai_client)
    assert result["applied"] is True and result["provider"] == "Anthropic Claude", result
    assert result["failedOver"] is True
    await wait_until(lambda: recorder.requests, "the failover message")
    [request] = recorder.requests
    assert request.message == failover("Anthropic Claude")
    assert request.type == types.MessageType.Warning
    assert [a.title for a in request.actions] == ["Make Anthropic Claude primary"]
    await wait_until(
        lambda: any(s["state"] == "degraded" for s in recorder.notifications.get("storyteller/status", [])),
        "a degraded status",
    )
    await ai_client.shutdown_session()


async def test_all_providers_failing_offers_retry_and_configure(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [("openai", simulator.endpoint("openai")), ("gemini", simulator.endpoint("gemini"))]
    )
    await simulator.inject("openai", "server_error")
    await simulator.inject("gemini", "server_error")
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities(), {"actions": {"timeoutMs": 3000}})
    open_manuscript(ai_client)
    result = await continue_scene(ai_client)
    assert result == {"applied": False, "action": "continueScene", "reason": "allFailed"}
    await wait_until(lambda: any(r.message == ALL_FAILED for r in recorder.requests), "the all-failed message")
    request = next(r for r in recorder.requests if r.message == ALL_FAILED)
    assert [a.title for a in request.actions] == ["Retry", "Configure Providers"]
    await ai_client.shutdown_session()


async def test_offline_is_told_and_actions_are_then_disabled_with_the_reason(
    ai_client: LanguageClient, configured_providers
):
    await configured_providers([("openai", unreachable_endpoint()), ("claude", unreachable_endpoint())])
    Recorder(ai_client)
    await initialize(ai_client, rich_capabilities(), {"actions": {"timeoutMs": 2000}})
    open_manuscript(ai_client)
    result = await continue_scene(ai_client)
    assert result["reason"] == "offline", result
    await wait_until(lambda: any(m.message == OFFLINE for m in ai_client.messages), "the offline message")
    actions = await ai_client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            range=end_of_text(),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert [a.title for a in actions] == ["Continue scene", "Expand worldbuilding"]
    assert all(a.disabled is not None and a.disabled.reason == OFFLINE for a in actions)
    await ai_client.shutdown_session()


async def test_the_not_configured_prompt_appears_once_when_ai_is_asked_for(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers([])
    recorder = Recorder(ai_client)
    recorder.presses[NOT_CONFIGURED] = "Configure AI Provider"
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    end = end_of_text().end

    def inline(kind):
        return ai_client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=end,
                context=types.InlineCompletionContext(trigger_kind=kind),
            )
        )

    # Typing: automatic requests, no prompt.
    for _ in range(3):
        await asyncio.wait_for(inline(types.InlineCompletionTriggerKind.Automatic), PATIENCE)
    await asyncio.sleep(0.3)
    assert recorder.requests == []
    # Asking: the prompt, once, and its button asks the editor to open the provider settings.
    for _ in range(3):
        await asyncio.wait_for(inline(types.InlineCompletionTriggerKind.Invoked), PATIENCE)
    await wait_until(lambda: recorder.requests, "the not-configured prompt")
    await wait_until(lambda: recorder.notifications.get("storyteller/openSettings"), "openSettings")
    await asyncio.sleep(0.3)
    assert [r.message for r in recorder.requests] == [NOT_CONFIGURED]
    assert [a.title for a in recorder.requests[0].actions] == ["Configure AI Provider", "Maybe Later"]
    statuses = recorder.notifications.get("storyteller/status", [])
    assert statuses and statuses[0]["state"] == "notConfigured"
    assert await simulator.requests() == []
    await ai_client.shutdown_session()


async def test_clients_without_buttons_get_the_cli_command(
    ai_client: LanguageClient, configured_providers
):
    await configured_providers([])
    # No message buttons, no disabled code actions.
    await initialize(ai_client, synthetic(workspace={"applyEdit": True}))
    open_manuscript(ai_client)
    for _ in range(2):
        actions = await ai_client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                range=end_of_text(),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        assert not actions
    await wait_until(lambda: any(NOT_CONFIGURED in m.message for m in ai_client.messages), "the prompt")
    await asyncio.sleep(0.3)
    [message] = [m for m in ai_client.messages if NOT_CONFIGURED in m.message]
    assert "storyteller-lsp provider add" in message.message
    await ai_client.shutdown_session()


async def test_a_settings_change_that_moves_routing_sends_the_new_status(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    # Residency is decided by the endpoint's host (issue 15): the simulator's Scaleway stand-in on
    # 127.0.0.1 is not EU-resident; a custom endpoint the author marks euResident is.
    await configured_providers(
        [
            ("openai", simulator.endpoint("openai")),
            ("custom", simulator.endpoint("custom"), {"euResident": True}),
        ]
    )
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())

    def active() -> list[str | None]:
        return [
            (s.get("active") or {}).get("provider")
            for s in recorder.notifications.get("storyteller/status", [])
        ]

    await wait_until(lambda: active() and active()[-1] == "openai", "the first status")
    # euOnly: the EU-resident custom endpoint serves now, and the editor's status shows it at
    # once, before any request.
    ai_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"storyteller": {"euOnly": True}})
    )
    await wait_until(lambda: active()[-1] == "custom", "the status after euOnly")
    # A change that moves nothing (the log level) sends no status.
    sent = len(active())
    ai_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"storyteller": {"euOnly": True, "logLevel": "debug"}})
    )
    await asyncio.sleep(0.3)
    assert len(active()) == sent
    ai_client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"storyteller": {"euOnly": False}})
    )
    await wait_until(lambda: active()[-1] == "openai", "the status after euOnly is off")
    assert await simulator.requests() == []
    await ai_client.shutdown_session()
