"""Issue 15 over executeCommand: a Custom provider without a model (the first its endpoint lists
is tested, stored and returned), and providers on the system key (``keySource: "env"``): tested
with the variable's key before they are stored, no key stored, ``keySource: env`` in the list,
a clear error when the variable is not set, and a key rotation that says what to do."""

from __future__ import annotations

import pathlib
from typing import Any

from conftest import EditorSession, RawServer, Simulator, credentials_in_file

SYSTEM_KEY = "sk-system-openai-e2e-9a4f"


async def start(server_command: list[str], env: dict[str, str]) -> tuple[RawServer, EditorSession]:
    server = await RawServer.start(server_command, env)
    session = EditorSession(server)
    init = await session.request(
        "initialize",
        {"capabilities": {}, "initializationOptions": {"credentialStore": "file"}},
    )
    assert "result" in init, init
    await session.notify("initialized", {})
    return server, session


def error_text(outcome: dict[str, Any]) -> str:
    assert "error" in outcome, outcome
    return outcome["error"]["message"]


async def test_a_custom_provider_without_a_model_takes_the_first_listed(
    server_command: list[str], server_env: dict[str, str], simulator: Simulator
):
    server, session = await start(server_command, credentials_in_file(server_env))
    try:
        endpoint = simulator.endpoint("custom")
        tested = await session.execute("storyteller.providers.test", {"provider": "custom", "endpoint": endpoint})
        assert "result" in tested, tested
        assert tested["result"]["ok"] is True and tested["result"]["model"] == "llama3.2", tested

        await simulator.inject("custom", "no_model_listing", times=1)
        refused = await session.execute("storyteller.providers.add", {"provider": "custom", "endpoint": endpoint})
        assert "error" in refused, refused
        assert (await session.execute("storyteller.providers.list", {}))["result"] == []

        added = await session.execute("storyteller.providers.add", {"provider": "custom", "endpoint": endpoint})
        assert added["result"]["model"] == "llama3.2", added
        listed = (await session.execute("storyteller.providers.list", {}))["result"]
        assert listed[0]["model"] == "llama3.2" and listed[0]["keySource"] == "none", listed
    finally:
        await server.stop()


async def test_a_provider_on_the_system_key(
    server_command: list[str], server_env: dict[str, str], simulator: Simulator, data_dir: pathlib.Path
):
    env = {**credentials_in_file(server_env), "OPENAI_API_KEY": SYSTEM_KEY}
    server, session = await start(server_command, env)
    try:
        # DEEPSEEK_API_KEY is not set: a clear error naming it, nothing stored.
        missing = await session.execute(
            "storyteller.providers.add",
            {"provider": "deepseek", "keySource": "env", "endpoint": simulator.endpoint("deepseek")},
        )
        assert "DEEPSEEK_API_KEY is not set" in error_text(missing), missing
        both = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "keySource": "env", "apiKey": "sk-typed-key-0000", "endpoint": simulator.endpoint("openai")},
        )
        assert "keySource" in error_text(both)

        await simulator.clear_requests()
        added = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "keySource": "env", "endpoint": simulator.endpoint("openai")},
        )
        assert added["result"]["id"] == 1, added
        tested = await simulator.requests("openai")
        assert tested and tested[-1]["headers"]["authorization"] == "Bearer ••••9a4f", tested
        assert not (data_dir / "credentials.enc").exists() or SYSTEM_KEY.encode() not in (
            data_dir / "credentials.enc"
        ).read_bytes()

        listed = (await session.execute("storyteller.providers.list", {}))["result"]
        assert listed[0]["keySource"] == "env" and listed[0]["keyHint"] == "••••9a4f", listed
        status = (await session.execute("storyteller.status", {}))["result"]
        assert [p["key"] for p in status["providers"]] == ["system"], status

        rotated = await session.execute("storyteller.providers.update", {"id": 1, "apiKey": "sk-own-key-1234"})
        assert "uses the system key from OPENAI_API_KEY" in error_text(rotated), rotated
        listed = (await session.execute("storyteller.providers.list", {}))["result"]
        assert listed[0]["keySource"] == "env", listed
    finally:
        await server.stop()
