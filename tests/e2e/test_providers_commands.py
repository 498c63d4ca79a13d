"""Provider management through ``workspace/executeCommand`` against the built server and the
simulator process: add with a failing then a good key, list, setPrimary, remove with the
``window/showMessageRequest`` confirmation (answered Remove / Cancel), remove from a client without
message actions, and InvalidParams naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import (
    CLIENTS,
    Simulator,
    credentials_in_file,
    execute_command,
    initialize,
    shown_message,
    synthetic,
)
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

INVALID_PARAMS = -32602
REQUEST_FAILED = -32803

#: A client that shows message requests with buttons.
WITH_BUTTONS = synthetic(
    window={"showMessage": {"messageActionItem": {"additionalPropertiesSupport": False}}}
)
SETTINGS = {"credentialStore": "file"}

LIST_FIELDS = {
    "id",
    "provider",
    "displayName",
    "model",
    "endpoint",
    "isPrimary",
    "isActive",
    "keySource",
    "keyHint",
    "health",
    "lastUsedAt",
    "rateLimit",
}


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return credentials_in_file(server_env)


def answer_message_requests(client: LanguageClient, answers: list[str | None]) -> list[Any]:
    """Answers each ``window/showMessageRequest`` with the next title (None: dismissed); returns
    the list the requests are recorded in."""
    asked: list[Any] = []

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def on_request(params: types.ShowMessageRequestParams):
        asked.append(params)
        title = answers.pop(0) if answers else None
        return None if title is None else types.MessageActionItem(title=title)

    return asked


async def add(client: LanguageClient, simulator: Simulator, provider: str, key: str) -> int:
    result = await execute_command(
        client,
        "storyteller.providers.add",
        {"provider": provider, "apiKey": key, "endpoint": simulator.endpoint(provider)},
    )
    return result["id"]


async def providers(client: LanguageClient) -> list[dict[str, Any]]:
    return await execute_command(client, "storyteller.providers.list")


async def test_add_with_a_failing_then_a_good_key_list_and_set_primary(
    client: LanguageClient, simulator: Simulator
):
    await initialize(client, WITH_BUTTONS, SETTINGS)
    with pytest.raises(JsonRpcException) as failed:
        await add(client, simulator, "openai", "sk-e2e-invalid-key-0601")
    assert failed.value.code == REQUEST_FAILED
    assert failed.value.message == (
        "The API key for OpenAI is invalid. Please check your key in Settings."
    )
    assert failed.value.data == {"kind": "invalidKey"}
    assert await providers(client) == []

    assert await add(client, simulator, "openai", "sk-e2e-good-key-0602") == 1
    assert await add(client, simulator, "claude", "sk-ant-e2e-good-0603") == 2
    listed = await providers(client)
    assert [p["id"] for p in listed] == [1, 2]
    for entry in listed:
        assert LIST_FIELDS <= set(entry), entry
        assert entry["keySource"] == "file"
        assert entry["health"] in {"ok", "cooling", "down", "unknown"}
        assert set(entry["rateLimit"]) == {"perMinute", "remaining"}
    assert listed[0]["keyHint"] == "••••0602"
    assert listed[0]["isPrimary"] is True and listed[1]["isPrimary"] is False
    assert "sk-e2e-good-key-0602" not in str(listed)

    assert await execute_command(client, "storyteller.providers.setPrimary", {"id": 2}) == {
        "id": 2,
        "isPrimary": True,
    }
    listed = await providers(client)
    assert [(p["id"], p["isPrimary"]) for p in listed] == [(2, True), (1, False)]
    status = await execute_command(client, "storyteller.providers.test", {"id": 2})
    assert status["ok"] is True and status["model"] == "claude-sonnet-4-5"
    assert isinstance(status["latencyMs"], int)

    catalog = await execute_command(client, "storyteller.providers.catalog")
    assert [c["provider"] for c in catalog] == [
        "openai", "claude", "gemini", "deepseek", "yandex", "scaleway", "openrouter", "custom",
    ]
    models = await execute_command(client, "storyteller.providers.models", {"id": 1})
    assert any(m["id"] == "gpt-4o" for m in models)
    await client.shutdown_session()


async def test_remove_asks_first_and_then_which_provider_is_primary(
    client: LanguageClient, simulator: Simulator
):
    asked = answer_message_requests(client, ["Cancel", "Remove", "Google Gemini"])
    await initialize(client, WITH_BUTTONS, SETTINGS)
    await add(client, simulator, "openai", "sk-e2e-remove-0604")
    await add(client, simulator, "claude", "sk-ant-e2e-remove-0605")
    await add(client, simulator, "gemini", "AIza-e2e-remove-0606")

    result = await execute_command(client, "storyteller.providers.remove", {"id": 1})
    assert result == {"removed": False}
    assert len(await providers(client)) == 3
    assert asked[0].message == (
        "Remove OpenAI? This will delete the stored API key and you'll need to re-enter it if "
        "you want to use this provider again."
    )
    assert [a.title for a in asked[0].actions] == ["Remove", "Cancel"]

    result = await execute_command(client, "storyteller.providers.remove", {"id": 1})
    assert result == {"removed": True, "primary": 3}
    assert asked[2].message == "OpenAI was the primary provider. Which provider should be primary now?"
    assert [a.title for a in asked[2].actions] == ["Anthropic Claude", "Google Gemini"]
    listed = await providers(client)
    assert [(p["id"], p["isPrimary"]) for p in listed] == [(3, True), (2, False)]

    # Not the primary: nothing more to ask.
    asked.clear()
    result = await execute_command(
        client, "storyteller.providers.remove", {"id": 2, "confirmed": True}
    )
    assert result == {"removed": True, "primary": None}
    assert asked == []
    await client.shutdown_session()


async def test_remove_without_message_actions_points_to_confirmed_and_the_cli(
    client: LanguageClient, simulator: Simulator
):
    await initialize(client, CLIENTS["bare"], SETTINGS)
    await add(client, simulator, "openai", "sk-e2e-bare-0607")
    await add(client, simulator, "deepseek", "sk-e2e-bare-0608")

    with pytest.raises(JsonRpcException) as refused:
        await execute_command(client, "storyteller.providers.remove", {"id": 1})
    assert refused.value.code == REQUEST_FAILED
    assert refused.value.data == {"kind": "confirmationRequired"}
    assert "`confirmed: true`" in refused.value.message
    assert "storyteller-lsp provider remove 1" in refused.value.message
    assert len(await providers(client)) == 2

    result = await execute_command(
        client, "storyteller.providers.remove", {"id": 1, "confirmed": True}
    )
    assert result == {"removed": True, "primary": 2}
    told = await shown_message(client, "is now the primary provider")
    assert told.message.startswith("DeepSeek is now the primary provider.")
    await client.shutdown_session()


@pytest.mark.parametrize(
    ("command", "arguments", "field"),
    [
        ("storyteller.providers.add", {"provider": "openai", "apiKey": ""}, "apiKey"),
        ("storyteller.providers.add", {"provider": "mistral", "apiKey": "k-1234567"}, "provider"),
        (
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": "k-1234567", "endpoint": "ftp://x/v1"},
            "endpoint",
        ),
        (
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": "k-1234567", "options": {"folderId": "b1g"}},
            "options.folderId",
        ),
        ("storyteller.providers.add", {"provider": "openai", "apiKey": "k-1234567", "x": 1}, "x"),
        ("storyteller.providers.update", {"id": 99, "model": "gpt-4o"}, "id"),
        ("storyteller.providers.update", {"id": 1, "isActive": "no"}, "isActive"),
        ("storyteller.providers.setPrimary", {"id": "1"}, "id"),
        ("storyteller.providers.remove", {"id": 99, "confirmed": True}, "id"),
        ("storyteller.providers.list", {"verbose": True}, "verbose"),
        ("storyteller.sessions.add", {"provider": "openai", "name": "x", "apiKey": "k-1234567"}, "name"),
    ],
)
async def test_invalid_arguments_are_invalid_params_naming_the_field(
    client: LanguageClient, command: str, arguments: dict[str, Any], field: str
):
    await initialize(client, CLIENTS["bare"], SETTINGS)
    with pytest.raises(JsonRpcException) as invalid:
        await execute_command(client, command, arguments)
    assert invalid.value.code == INVALID_PARAMS
    assert invalid.value.message.startswith(f"{field}: "), invalid.value.message
    await client.shutdown_session()


async def test_named_sessions_add_list_and_remove(client: LanguageClient, simulator: Simulator):
    await initialize(client, CLIENTS["bare"], SETTINGS)
    session = await execute_command(
        client,
        "storyteller.sessions.add",
        {
            "provider": "openai",
            "name": "work-laptop",
            "apiKey": "sk-e2e-session-0609",
            "endpoint": simulator.endpoint("openai"),
        },
    )
    assert session == {"id": 1, "provider": "openai", "authType": "api_key", "name": "work-laptop"}
    added = await execute_command(
        client,
        "storyteller.providers.add",
        {"provider": "openai", "session": "work-laptop", "endpoint": simulator.endpoint("openai")},
    )
    sessions = await execute_command(client, "storyteller.sessions.list", {"provider": "openai"})
    assert sessions[0]["keyHint"] == "••••0609"
    assert sessions[0]["usedBy"] == [added["id"]]
    removed = await execute_command(client, "storyteller.sessions.remove", {"id": 1})
    assert removed == {"removed": True, "detached": [added["id"]]}
    assert await execute_command(client, "storyteller.sessions.list") == []
    await client.shutdown_session()


async def test_a_session_key_is_tested_and_a_session_can_expire(
    client: LanguageClient, simulator: Simulator
):
    """Issue 15: sessions.add tests the key first (nothing stored on failure), takes an optional
    ``expiresAt``; an expired session is listed as expired and refused with a message."""
    import asyncio
    from datetime import datetime, timedelta, timezone

    await initialize(client, CLIENTS["bare"], SETTINGS)
    endpoint = simulator.endpoint("openai")
    with pytest.raises(JsonRpcException) as rejected:
        await execute_command(
            client,
            "storyteller.sessions.add",
            {"provider": "openai", "name": "work", "apiKey": "sk-invalid-0701", "endpoint": endpoint},
        )
    assert rejected.value.code == REQUEST_FAILED
    assert rejected.value.data == {"kind": "invalidKey"}
    assert await execute_command(client, "storyteller.sessions.list") == []
    assert [r["path"] for r in await simulator.requests("openai")] == ["/openai/v1/models"]

    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    with pytest.raises(JsonRpcException) as invalid:
        await execute_command(
            client,
            "storyteller.sessions.add",
            {"provider": "openai", "name": "work", "apiKey": "sk-e2e-0702", "expiresAt": past},
        )
    assert invalid.value.code == INVALID_PARAMS
    assert invalid.value.message.startswith("expiresAt: "), invalid.value.message

    soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
    await execute_command(
        client,
        "storyteller.sessions.add",
        {"provider": "openai", "name": "trial", "apiKey": "sk-e2e-0703", "expiresAt": soon, "endpoint": endpoint},
    )
    added = await execute_command(
        client, "storyteller.providers.add", {"provider": "openai", "session": "trial", "endpoint": endpoint}
    )
    [listed] = await execute_command(client, "storyteller.sessions.list")
    assert listed["expired"] is False and listed["expiresAt"] is not None
    await asyncio.sleep(2.5)
    [listed] = await execute_command(client, "storyteller.sessions.list")
    assert listed["expired"] is True
    await simulator.clear_requests()
    with pytest.raises(JsonRpcException) as expired:
        await execute_command(client, "storyteller.providers.test", {"id": added["id"]})
    assert expired.value.data == {"kind": "sessionExpired"}
    assert "session trial has expired" in expired.value.message
    assert await simulator.requests("openai") == [], "the expired key was not sent"
    await client.shutdown_session()
