"""`storyteller-lsp simulator` as a separate process: what the other e2e suites build on."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest

from conftest import PATIENCE, Simulator


def post_json(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=PATIENCE) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_serves_a_vendor_api_records_requests_and_injects_faults(simulator: Simulator):
    health = await simulator.control("GET", "/_sim/health")
    assert health["ok"] is True
    assert health["endpoints"]["openai"] == simulator.endpoint("openai")

    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Mara opened the door."}]}
    url = simulator.endpoint("openai") + "/chat/completions"
    auth = {"Authorization": "Bearer sk-simulator-process-test-0001"}
    status, body = await asyncio.to_thread(post_json, url, chat, auth)
    assert status == 200
    assert body["choices"][0]["message"]["content"].strip()

    await simulator.inject("openai", "rate_limit", times=1, retryAfterSecs=2)
    status, body = await asyncio.to_thread(post_json, url, chat, auth)
    assert status == 429
    status, _ = await asyncio.to_thread(post_json, url, chat, auth)
    assert status == 200, "a fault armed for one request applies once"

    recorded = await simulator.requests("openai")
    assert len(recorded) == 3
    assert all("sk-simulator-process-test-0001" not in json.dumps(r) for r in recorded)
    await simulator.clear_requests()
    assert await simulator.requests("openai") == []


async def test_stops_when_its_stdin_closes(simulator: Simulator):
    assert simulator.process.stdin is not None
    simulator.process.stdin.close()
    code = await asyncio.wait_for(simulator.process.wait(), PATIENCE)
    assert code == 0
    with pytest.raises(OSError):
        await simulator.control("GET", "/_sim/health")
