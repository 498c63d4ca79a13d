"""What the author is told about where keys are kept: with ``credentialStore: "file"`` chosen on
purpose, one information message at start that says the setting chose the file (never the "No
usable OS keychain" warning, not again when a key is stored); with ``auto`` and no usable keychain,
the warning stays."""

from __future__ import annotations

import asyncio

import pytest
from conftest import (
    Simulator,
    credentials_in_file,
    execute_command,
    initialize,
    shown_message,
    synthetic,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

CHOSEN = 'Your credentialStore setting is "file", so API keys are stored in the encrypted file'
FALLBACK = "No usable OS keychain"


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    # No session bus: `auto` finds no keychain and falls back to the file.
    env = credentials_in_file(server_env)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return env


async def add_provider(client: LanguageClient, simulator: Simulator, key: str) -> None:
    await execute_command(
        client,
        "storyteller.providers.add",
        {"provider": "openai", "apiKey": key, "endpoint": simulator.endpoint("openai")},
    )


async def test_a_chosen_file_store_is_told_once_as_information(
    client: LanguageClient, simulator: Simulator
):
    await initialize(client, synthetic(), {"credentialStore": "file"})
    told = await shown_message(client, CHOSEN)
    assert told.type == types.MessageType.Info
    assert "credentials.enc" in told.message

    await add_provider(client, simulator, "sk-e2e-good-0701")
    await execute_command(client, "storyteller.providers.list")
    await asyncio.sleep(0.5)
    about_the_store = [m for m in client.messages if "credentials.enc" in m.message]
    assert [(m.type, m.message) for m in about_the_store] == [(told.type, told.message)]
    assert not any(FALLBACK in m.message for m in client.messages)
    assert not any(m.type == types.MessageType.Warning for m in client.messages)


async def test_a_real_fallback_still_warns(client: LanguageClient, simulator: Simulator):
    await initialize(client, synthetic(), {"credentialStore": "auto"})
    await add_provider(client, simulator, "sk-e2e-good-0703")
    warned = await shown_message(client, FALLBACK)
    assert warned.type == types.MessageType.Warning
    assert "credentials.enc" in warned.message
    assert not any(CHOSEN in m.message for m in client.messages)
