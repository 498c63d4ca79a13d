"""The providers against a provider server nobody here wrote: a real LiteLLM proxy (PyPI
``litellm[proxy]``, see requirements.txt) on 127.0.0.1 with the mock models of
``tests/fixtures/litellm/config.yaml`` (``mock_response``: no upstream call, no database, telemetry
and the remote cost map off).

- ``custom``, ``openai`` (endpoint override) and ``claude`` (LiteLLM's Anthropic-style
  ``/v1/messages``): add (tested before storing), test, list models, an inline completion (not
  streamed) and every code action (streamed), over LSP with the built binary.
- LiteLLM's rpm limit gives real 429s: the router classifies them as rate limited, honours the
  60 s the proxy asks for (no request reaches the proxy while it waits) and fails over to the
  simulator.

The proxy is started once for the module (its start-up takes most of the time), within
``START_LIMIT``, and always stopped."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import (
    KEY_VARIABLES,
    PATIENCE,
    REPO_ROOT,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    code_actions,
    credentials_in_file,
    execute_command,
    initialize,
    read_code_actions_by_shape,
    rich_capabilities,
)
from lsprotocol import types
from pytest_lsp import LanguageClient

CONFIG = REPO_ROOT / "tests/fixtures/litellm/config.yaml"
MASTER_KEY = "sk-litellm-test-master"
#: Longest the proxy may take to answer its liveness probe after being started.
START_LIMIT = 120.0
#: The proxy's models: their mock answers are in the config.
MOCK_TEXT = "The lamp guttered, and Elena stepped into the cold hall."
LIMITED_TEXT = "Rain again, soft on the slates."

SETTINGS = {"credentialStore": "file", "inline": {"debounceMs": 0, "timeoutMs": 15_000}}

URI = "file:///novel/chapter-2.md"
MANUSCRIPT = (
    "# Chapter 2: Lamps\n"
    "\n"
    "Elena reached the top of the stairs. The house was silent, and the lamp had gone out.\n"
    "She listened at the door."
)
SELECTED = "The house was silent, and the lamp had gone out."


@dataclass
class LiteLLM:
    base_url: str
    log: pathlib.Path
    started_in: float

    def endpoint(self) -> str:
        return self.base_url + "/v1"

    def requests(self, path: str) -> list[int]:
        """The statuses of the proxy's answers to ``POST path`` so far (uvicorn's access log)."""
        pattern = re.compile(r'"POST ' + re.escape(path) + r' HTTP/1\.1" (\d{3})')
        return [int(m.group(1)) for m in pattern.finditer(self.log.read_text(errors="replace"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def litellm(tmp_path_factory: pytest.TempPathFactory):
    # The interpreter that runs the tests, which requirements.txt installed LiteLLM into.
    if importlib.util.find_spec("litellm") is None:
        pytest.fail("litellm is not installed: python3 -m pip install -r tests/e2e/requirements.txt")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES and k != "DATABASE_URL"}
    env.update(
        LITELLM_TELEMETRY="False",
        # The model cost map is read from the package, not fetched.
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONUNBUFFERED="1",
        NO_PROXY="*",
    )
    log = tmp_path_factory.mktemp("litellm") / "proxy.log"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(CONFIG)]
            + ["--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        while not _alive(base + "/health/liveliness"):
            if process.poll() is not None:
                pytest.fail(f"litellm exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() - started > START_LIMIT:
                pytest.fail(f"litellm did not start within {START_LIMIT} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        proxy = LiteLLM(base, log, time.monotonic() - started)
        print(f"litellm proxy started in {proxy.started_in:.1f} s")
        yield proxy
    finally:
        # The proxy and anything it started share its session: stop them together.
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return credentials_in_file(server_env)


async def add(client: LanguageClient, provider: str, endpoint: str, model: str, key: str) -> int:
    result = await execute_command(
        client,
        "storyteller.providers.add",
        {"provider": provider, "apiKey": key, "endpoint": endpoint, "model": model},
    )
    return result["id"]


def open_manuscript(client: LanguageClient) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=MANUSCRIPT)
        )
    )


async def inline_at_end(client: LanguageClient, model: TextModel) -> list[types.InlineCompletionItem]:
    end = model.position(len(model.text))
    answer = await asyncio.wait_for(
        client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=end,
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            )
        ),
        PATIENCE,
    )
    if answer is None:
        return []
    return list(answer.items if isinstance(answer, types.InlineCompletionList) else answer)


async def run(client: LanguageClient, action: Any) -> dict[str, Any]:
    assert action.command is not None
    return as_dict(
        await asyncio.wait_for(
            client.workspace_execute_command_async(
                types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
            ),
            PATIENCE,
        )
    )


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.mark.parametrize(
    ("provider", "path"),
    [("custom", "/v1/chat/completions"), ("openai", "/v1/chat/completions"), ("claude", "/v1/messages")],
)
async def test_a_provider_against_the_litellm_proxy(
    client: LanguageClient, litellm: LiteLLM, provider: str, path: str
):
    read_code_actions_by_shape(client)
    recorder = Recorder(client)
    await initialize(client, rich_capabilities(), SETTINGS)
    before = len(litellm.requests(path))

    # Added only after a connection test against the proxy; tested again; its models listed.
    provider_id = await add(client, provider, litellm.endpoint(), "story-mock", MASTER_KEY)
    status = await execute_command(client, "storyteller.providers.test", {"id": provider_id})
    assert status["ok"] is True and status["model"] == "story-mock", status
    models = await execute_command(client, "storyteller.providers.models", {"id": provider_id})
    assert {"story-mock", "story-limited"} <= {m["id"] for m in models}, models

    open_manuscript(client)
    model = TextModel(MANUSCRIPT, "utf-16")

    # Inline completion: one call, not streamed.
    [item] = await inline_at_end(client, model)
    assert isinstance(item.insert_text, str)
    assert "Elena stepped into the cold hall" in item.insert_text, item.insert_text
    assert litellm.requests(path)[before:] == [200]

    # Every action, at the cursor and on a selection: streamed, shaped, applied.
    end = model.position(len(MANUSCRIPT))
    start = MANUSCRIPT.index(SELECTED)
    selection = types.Range(start=model.position(start), end=model.position(start + len(SELECTED)))
    actions = await code_actions(client, URI, types.Range(start=end, end=end))
    actions += await code_actions(client, URI, selection)
    assert len(actions) >= 9, [a.title for a in actions]
    for action in actions:
        result = await run(client, action)
        assert result.get("applied") is True, (action.title, result)
        # Whatever the shaping kept of the mock answer, it came from the proxy.
        assert words(result["text"]) and words(result["text"]) <= words(MOCK_TEXT), (action.title, result)
    assert len(recorder.edits) == len(actions)
    assert litellm.requests(path)[before:] == [200] * (1 + len(actions))
    await client.shutdown_session()


def spend_the_limit(litellm: LiteLLM) -> None:
    """Another client of the proxy uses ``story-limited``'s one request of the minute, so the
    router has seen no rate-limit header yet when its own request meets the 429."""
    request = urllib.request.Request(
        litellm.endpoint() + "/chat/completions",
        data=b'{"model":"story-limited","messages":[{"role":"user","content":"Hello"}]}',
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=PATIENCE) as response:
        assert response.status == 200


async def test_rate_limits_are_classified_honoured_and_failed_over(
    client: LanguageClient, litellm: LiteLLM, simulator: Simulator
):
    """``story-limited`` allows one request a minute; the next gets LiteLLM's 429 with
    ``llm_provider-retry-after: 60``."""
    path = "/v1/chat/completions"
    read_code_actions_by_shape(client)
    recorder = Recorder(client)
    await initialize(client, rich_capabilities(), SETTINGS)
    limited = await add(client, "custom", litellm.endpoint(), "story-limited", MASTER_KEY)
    await add(client, "openai", simulator.endpoint("openai"), "gpt-4o", "sk-e2e-backup-0701")
    backup_text = "Gulls wheeled over the harbour wall."
    await simulator.script_replies("openai", [backup_text] * 3)
    before = len(litellm.requests(path))
    await asyncio.to_thread(spend_the_limit, litellm)
    assert litellm.requests(path)[before:] == [200]

    open_manuscript(client)
    model = TextModel(MANUSCRIPT, "utf-16")
    version = 1

    async def type_and_ask(text: str) -> str:
        nonlocal version
        version += 1
        change = model.edit(len(model.text), len(model.text), text)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[change],
            )
        )
        [item] = await inline_at_end(client, model)
        assert isinstance(item.insert_text, str)
        return item.insert_text

    # The proxy's 429 is classified as a rate limit; the backup answers at once.
    started = time.monotonic()
    assert "harbour wall" in await type_and_ask(" Somewhere")
    assert time.monotonic() - started < 10
    assert litellm.requests(path)[before:] == [200, 429]
    listed = {p["id"]: p for p in await execute_command(client, "storyteller.providers.list")}
    assert listed[limited]["health"] == "cooling", listed[limited]

    # The proxy asked for 60 s: meanwhile nothing is sent to it; the backup answers an inline
    # completion (not streamed) and an action (streamed).
    assert "harbour wall" in await type_and_ask(" a door opened.")
    end = model.position(len(model.text))
    [continue_scene, *_] = await code_actions(client, URI, types.Range(start=end, end=end))
    result = await run(client, continue_scene)
    assert result.get("applied") is True and "harbour wall" in result["text"], result
    assert len(recorder.edits) == 1
    assert litellm.requests(path)[before:] == [200, 429]
    sim_chats = [r for r in await simulator.requests("openai") if r["method"] == "POST"]
    assert len(sim_chats) == 3
    await client.shutdown_session()
