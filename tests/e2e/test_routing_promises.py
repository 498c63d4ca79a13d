"""Routing promises of issue 15, over LSP with the built binary and the simulator process:
setPrimary takes effect on the next request after a failover (DESIGN.md §5), the "Trying backup
provider..." text while generating, residency decided by the endpoint's host, the consent asked
once per project before text leaves the EU, and plain HTTP only to loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from conftest import (
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    credentials_in_file,
    execute_command,
    initialize,
    rich_capabilities,
    server_binary,
    wait_until,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcException
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


# --- "Trying backup provider..." while generating; honest texts in connection tests -------------

TRYING_BACKUP_OPENAI = "OpenAI is currently unavailable. Trying backup provider..."


async def test_trying_backup_is_told_while_generating_once_per_episode(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [("openai", simulator.endpoint("openai")), ("claude", simulator.endpoint("claude"))]
    )
    await simulator.inject("openai", "unavailable")
    Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    first = await continue_scene(ai_client)
    assert first["provider"] == "Anthropic Claude", first
    await wait_until(
        lambda: any(m.message == TRYING_BACKUP_OPENAI for m in ai_client.messages),
        "the trying-backup text",
    )
    second = await continue_scene(ai_client)
    assert second["provider"] == "Anthropic Claude", second
    await asyncio.sleep(0.3)
    assert sum(m.message == TRYING_BACKUP_OPENAI for m in ai_client.messages) == 1
    await ai_client.shutdown_session()


async def test_a_connection_test_promises_neither_a_backup_nor_a_retry(
    ai_client: LanguageClient, simulator: Simulator
):
    await initialize(ai_client, rich_capabilities())
    arguments = {
        "provider": "openai",
        "apiKey": "sk-e2e-connection-test-0001",
        "endpoint": simulator.endpoint("openai"),
    }
    await simulator.inject("openai", "unavailable", times=1)
    with pytest.raises(JsonRpcException) as unavailable:
        await execute_command(ai_client, "storyteller.providers.test", arguments)
    assert unavailable.value.message == "OpenAI is currently unavailable. Please try again later."

    await simulator.clear_requests()
    await simulator.inject("openai", "rate_limit", times=1, retryAfterSecs=7)
    with pytest.raises(JsonRpcException) as limited:
        await execute_command(ai_client, "storyteller.providers.test", arguments)
    assert limited.value.message == "API rate limit reached for OpenAI. Try the test again in 7 seconds."
    assert len(await simulator.requests("openai")) == 1, "a connection test does not retry"
    assert not any("Trying backup" in m.message for m in ai_client.messages)
    await ai_client.shutdown_session()


# --- Residency decided by the endpoint's host ---------------------------------------------------

NO_EU_PROVIDER = (
    "EU-only mode is on, but none of your active AI providers keeps data in the EU. "
    "Add Scaleway, or mark a custom endpoint as EU-resident."
)


async def test_providers_list_shows_residency_decided_by_the_host(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [
            ("scaleway", "https://api.scaleway.ai/v1"),
            ("custom", simulator.endpoint("custom"), {"euResident": True}),
            ("openai", simulator.endpoint("openai")),
        ]
    )
    await initialize(ai_client, rich_capabilities())
    listed = await execute_command(ai_client, "storyteller.providers.list")
    assert {p["provider"]: p["euResident"] for p in listed} == {
        "scaleway": True,
        "custom": True,
        "openai": False,
    }
    assert await simulator.requests() == []
    await ai_client.shutdown_session()


async def test_a_scaleway_entry_at_another_host_is_not_eu(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [("scaleway", simulator.endpoint("scaleway")), ("openai", simulator.endpoint("openai"))]
    )
    await initialize(ai_client, rich_capabilities(), {"euOnly": True})
    open_manuscript(ai_client)
    listed = await execute_command(ai_client, "storyteller.providers.list")
    assert [p["euResident"] for p in listed] == [False, False]
    result = await continue_scene(ai_client)
    assert result["applied"] is False and result["reason"] == "notConfigured", result
    await wait_until(lambda: any(m.message == NO_EU_PROVIDER for m in ai_client.messages), "the EU text")
    assert await simulator.requests() == []
    await ai_client.shutdown_session()


# --- Asked once per project before text leaves the EU --------------------------------------------

CONSENT_CLAUDE = "Send to Anthropic Claude (outside the EU)?"


def consent_questions(recorder: Recorder) -> list[types.ShowMessageRequestParams]:
    return [r for r in recorder.requests if r.message == CONSENT_CLAUDE]


def statuses(recorder: Recorder) -> list[dict]:
    return recorder.notifications.get("storyteller/status", [])


async def test_failover_out_of_the_eu_waits_for_the_authors_allow_and_remembers_it(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, data_dir
):
    await configured_providers(
        [
            ("custom", simulator.endpoint("custom"), {"euResident": True}),
            ("claude", simulator.endpoint("claude")),
        ]
    )
    await simulator.inject("custom", "unavailable")
    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    await wait_until(lambda: statuses(recorder), "the first status")
    assert statuses(recorder)[-1]["euConsent"] == "unanswered"

    # Dismissed: nothing leaves the EU, nothing is stored.
    refused = await continue_scene(ai_client)
    assert refused["applied"] is False and refused["reason"] == "consentNeeded", refused
    await wait_until(lambda: consent_questions(recorder), "the EU question")
    [question] = consent_questions(recorder)
    assert [a.title for a in question.actions] == ["Allow", "Keep EU only"]
    assert question.type == types.MessageType.Warning
    assert await generation_requests(simulator, "claude") == []

    # Allow: stored, and the action runs again and reaches Claude.
    recorder.presses[CONSENT_CLAUDE] = "Allow"
    await continue_scene(ai_client)
    await wait_until(lambda: len(consent_questions(recorder)) == 2, "the EU question again")
    await wait_until(lambda: recorder.edits, "the retried action's edit")
    assert await generation_requests(simulator, "claude")
    await wait_until(
        lambda: statuses(recorder)[-1]["euConsent"] == "allowed", "the answer in the status"
    )
    assert statuses(recorder)[-1]["euConsentText"]

    # Remembered: never asked again.
    again = await continue_scene(ai_client)
    assert again["applied"] is True and again["provider"] == "Anthropic Claude", again
    assert len(consent_questions(recorder)) == 2
    await ai_client.shutdown_session()

    import sqlite3

    db = sqlite3.connect(data_dir / "storyteller.db")
    try:
        assert db.execute("SELECT answer FROM residency_consent").fetchall() == [("allowed",)]
    finally:
        db.close()


async def test_keep_eu_only_routes_the_project_as_eu_only(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [
            ("custom", simulator.endpoint("custom"), {"euResident": True}),
            ("claude", simulator.endpoint("claude")),
        ]
    )
    await simulator.inject("custom", "unavailable")
    recorder = Recorder(ai_client)
    recorder.presses[CONSENT_CLAUDE] = "Keep EU only"
    await initialize(ai_client, rich_capabilities(), {"actions": {"timeoutMs": 3000}})
    open_manuscript(ai_client)
    await continue_scene(ai_client)
    await wait_until(
        lambda: statuses(recorder) and statuses(recorder)[-1]["euConsent"] == "keepEuOnly",
        "Keep EU only in the status",
    )
    after = await continue_scene(ai_client)
    assert after["applied"] is False and after["reason"] == "allFailed", after
    assert len(consent_questions(recorder)) == 1
    assert await generation_requests(simulator, "claude") == []
    await ai_client.shutdown_session()


def run_residency(server_env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(server_binary()), "residency", *args],
        env=credentials_in_file(server_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_answer_given_from_a_terminal_is_used_by_the_running_server(
    ai_client: LanguageClient, simulator: Simulator, configured_providers, server_env: dict
):
    """Editors without buttons (Helix) cannot answer the question: `storyteller-lsp residency`
    can, and the running server reads it at the next failover that stops at the EU border."""
    await configured_providers(
        [
            ("custom", simulator.endpoint("custom"), {"euResident": True}),
            ("claude", simulator.endpoint("claude")),
        ]
    )
    await simulator.inject("custom", "unavailable")
    shown = run_residency(server_env, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["euConsent"] == "unanswered"

    recorder = Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    refused = await continue_scene(ai_client)
    assert refused["reason"] == "consentNeeded", refused
    await wait_until(lambda: consent_questions(recorder), "the EU question")

    # Answered in a terminal while the editor's question was dismissed.
    given = run_residency(server_env, "allow")
    assert given.returncode == 0, given.stderr
    assert "allowed" in given.stdout, given.stdout
    await continue_scene(ai_client)
    await wait_until(lambda: recorder.edits, "the action run again with the terminal's answer")
    assert await generation_requests(simulator, "claude")
    assert len(consent_questions(recorder)) == 1, "not asked again"
    await wait_until(
        lambda: statuses(recorder)[-1]["euConsent"] == "allowed", "the answer in the status"
    )
    await ai_client.shutdown_session()

    # `ask` forgets the answer; a bad answer is a usage error.
    assert run_residency(server_env, "ask").returncode == 0
    assert json.loads(run_residency(server_env, "--json").stdout)["euConsent"] == "unanswered"
    assert run_residency(server_env, "maybe").returncode == 2


# --- Plain HTTP only to loopback -----------------------------------------------------------------

INVALID_PARAMS = -32602


async def test_plain_http_to_another_host_is_refused_before_connecting(
    ai_client: LanguageClient, simulator: Simulator
):
    await initialize(ai_client, rich_capabilities(), {"credentialStore": "file"})
    remote = {
        "provider": "custom",
        "endpoint": "http://example.invalid/v1",
        "model": "llama3.2",
    }
    for command in ("storyteller.providers.test", "storyteller.providers.add"):
        with pytest.raises(JsonRpcException) as refused:
            await execute_command(ai_client, command, remote)
        # An argument error, not a network error: nothing was resolved or connected.
        assert refused.value.code == INVALID_PARAMS, command
        assert "plain http://" in refused.value.message and "example.invalid" in refused.value.message
        assert "allowInsecureHttp" in refused.value.message
    assert await execute_command(ai_client, "storyteller.providers.list") == []

    # Loopback is fine over plain HTTP.
    local = {"provider": "custom", "endpoint": simulator.endpoint("custom"), "model": "llama3.2"}
    assert (await execute_command(ai_client, "storyteller.providers.test", local))["ok"] is True
    added = await execute_command(ai_client, "storyteller.providers.add", local)
    assert isinstance(added["id"], int)
    await ai_client.shutdown_session()


async def test_a_stored_plain_http_row_is_refused_at_request_time(
    ai_client: LanguageClient, configured_providers
):
    # A row from before the rule: a request would send the key in clear.
    await configured_providers([("openai", "http://example.invalid/v1")])
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    result = await continue_scene(ai_client)
    assert result["applied"] is False, result
    text = (
        "OpenAI uses plain http:// to example.invalid: the API key and your text would travel unencrypted."
    )
    await wait_until(lambda: any(text in m.message for m in ai_client.messages), "the refusal")
    assert not any("Cannot connect" in m.message for m in ai_client.messages)
    await ai_client.shutdown_session()


async def test_allow_insecure_http_warns_once_per_provider(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    # The allowed row is the backup, never called (Claude answers): the warning is told when the
    # router first plans a request with it, once, and no request goes to example.invalid.
    await configured_providers(
        [
            ("claude", simulator.endpoint("claude")),
            ("openai", "http://example.invalid/v1", {"allowInsecureHttp": True}),
        ]
    )
    Recorder(ai_client)
    await initialize(ai_client, rich_capabilities())
    open_manuscript(ai_client)
    warning = "OpenAI sends your API key and text unencrypted to example.invalid"
    await continue_scene(ai_client)
    await continue_scene(ai_client)
    await wait_until(lambda: any(warning in m.message for m in ai_client.messages), "the warning")
    await asyncio.sleep(0.3)
    assert sum(warning in m.message for m in ai_client.messages) == 1
    await ai_client.shutdown_session()


# --- The CLI refuses the same way ------------------------------------------------------------------


def run_cli(server_env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(server_binary()), "provider", *args],
        env=credentials_in_file(server_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_cli_refuses_plain_http_to_another_host_and_allows_loopback(
    server_env: dict, simulator: Simulator
):
    simulator_url = simulator.base_url
    for command in (
        ["test", "custom", "--endpoint", "http://example.invalid/v1", "--model", "llama3.2"],
        ["add", "custom", "--endpoint", "http://example.invalid/v1", "--model", "llama3.2", "--no-key"],
    ):
        done = run_cli(server_env, *command)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "plain http://" in done.stderr and "example.invalid" in done.stderr, done.stderr
    listed = run_cli(server_env, "list", "--json")
    assert json.loads(listed.stdout) == []

    local = ["--endpoint", simulator_url + "/custom/v1", "--model", "llama3.2"]
    assert run_cli(server_env, "add", "custom", *local, "--no-key").returncode == 0
    [row] = json.loads(run_cli(server_env, "list", "--json").stdout)
    assert row["euResident"] is False


async def test_ghost_text_never_waits_for_the_question_and_asks_it_once(
    ai_client: LanguageClient, simulator: Simulator, configured_providers
):
    await configured_providers(
        [
            ("custom", simulator.endpoint("custom"), {"euResident": True}),
            ("claude", simulator.endpoint("claude")),
        ]
    )
    await simulator.inject("custom", "unavailable")
    recorder = Recorder(ai_client)  # dismisses the question
    await initialize(ai_client, rich_capabilities(), {"inline": {"debounceMs": 0}})
    open_manuscript(ai_client)
    model = TextModel(MANUSCRIPT, "utf-16")
    for needle in ("the lighthouse", "by the window"):
        answer = await asyncio.wait_for(
            ai_client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=URI),
                    position=model.position(MANUSCRIPT.index(needle)),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic
                    ),
                )
            ),
            20,
        )
        items = answer.items if isinstance(answer, types.InlineCompletionList) else (answer or [])
        assert list(items) == []
    await wait_until(lambda: consent_questions(recorder), "the EU question from ghost text")
    await asyncio.sleep(0.3)
    assert len(consent_questions(recorder)) == 1
    assert await generation_requests(simulator, "claude") == []
    await ai_client.shutdown_session()
