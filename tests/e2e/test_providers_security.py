"""Keys and manuscript text never leave where they belong (issue 7 item 8).

A sentinel key (and two more: a rejected one and a rotated one) and a sentinel manuscript sentence
are planted; the server runs test / a failing add (rejected key, unreachable endpoint) / add /
rotate / models / sessions / remove with full debug logging; then every byte it wrote to stdout
(every LSP message), its stderr, the SQLite files (db, -wal, -shm), the credentials file and the
log files are scanned for each sentinel: zero hits.

The server is driven with raw JSON-RPC frames so that nothing a client library might drop or
decode escapes the scan.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

from conftest import (
    PATIENCE,
    EditorSession,
    RawServer,
    Simulator,
    credentials_in_file,
    unreachable_endpoint,
)

MANUSCRIPT_SENTINEL = "Marisol buried the SENTINEL-LANTERN-7c1e beneath the orchard wall"
KEY_SENTINEL = "sk-SENTINEL-key-3f9a2b7c6d"
REJECTED_SENTINEL = "sk-SENTINEL-invalid-8e4d1a"
ROTATED_SENTINEL = "sk-SENTINEL-rotated-5a0c9f"
SESSION_SENTINEL = "sk-SENTINEL-session-2b6e4d"
SENTINELS = [MANUSCRIPT_SENTINEL, KEY_SENTINEL, REJECTED_SENTINEL, ROTATED_SENTINEL, SESSION_SENTINEL]


class Session(EditorSession):
    """A raw LSP session that keeps every message it received, presses the titles of `answers`
    in turn and applies no edit."""

    def __init__(self, server: RawServer, answers: list[str]) -> None:
        super().__init__(server)
        self.answers = answers

    def answer_for(self, method: str, params: Any) -> Any:
        if method == "window/showMessageRequest":
            return {"title": self.answers.pop(0)} if self.answers else None
        if method == "workspace/applyEdit":
            return None
        return super().answer_for(method, params)


async def test_no_key_or_manuscript_text_reaches_messages_logs_or_files(
    server_command: list[str],
    server_env: dict[str, str],
    data_dir: pathlib.Path,
    simulator: Simulator,
    tmp_path: pathlib.Path,
):
    env = {**credentials_in_file(server_env), "STORYTELLER_LOG": "debug"}
    server = await RawServer.start(server_command, env)
    assert server.process.stderr is not None
    stderr_task = asyncio.create_task(server.process.stderr.read())
    session = Session(server, answers=["Remove"])
    workspace = tmp_path / "novel"
    workspace.mkdir()
    openai = simulator.endpoint("openai")

    try:
        init = await session.request(
            "initialize",
            {
                "capabilities": {
                    "window": {"showMessage": {"messageActionItem": {}}},
                    "workspace": {"configuration": True},
                },
                "workspaceFolders": [{"uri": workspace.as_uri(), "name": "novel"}],
                "initializationOptions": {"credentialStore": "file", "logLevel": "debug"},
            },
        )
        assert "result" in init
        await session.notify("initialized", {})
        uri = (workspace / "chapter-1.md").as_uri()
        await session.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": "markdown",
                    "version": 1,
                    "text": f"# Chapter 1\n\n{MANUSCRIPT_SENTINEL}.\n",
                }
            },
        )

        outcomes = {}
        outcomes["test"] = await session.execute(
            "storyteller.providers.test",
            {"provider": "openai", "apiKey": KEY_SENTINEL, "endpoint": openai},
        )
        outcomes["rejected add"] = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": REJECTED_SENTINEL, "endpoint": openai},
        )
        outcomes["unreachable add"] = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": KEY_SENTINEL, "endpoint": unreachable_endpoint()},
        )
        outcomes["wrong field"] = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": KEY_SENTINEL, "primary": KEY_SENTINEL},
        )
        outcomes["add"] = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": KEY_SENTINEL, "endpoint": openai},
        )
        outcomes["rejected rotation"] = await session.execute(
            "storyteller.providers.update", {"id": 1, "apiKey": REJECTED_SENTINEL}
        )
        outcomes["rotate"] = await session.execute(
            "storyteller.providers.update", {"id": 1, "apiKey": ROTATED_SENTINEL}
        )
        outcomes["list"] = await session.execute("storyteller.providers.list", {})
        outcomes["models"] = await session.execute("storyteller.providers.models", {"id": 1})
        outcomes["session add"] = await session.execute(
            "storyteller.sessions.add",
            {
                "provider": "claude",
                "name": "work",
                "apiKey": SESSION_SENTINEL,
                "endpoint": simulator.endpoint("claude"),
            },
        )
        outcomes["sessions"] = await session.execute("storyteller.sessions.list", {})
        outcomes["session remove"] = await session.execute("storyteller.sessions.remove", {"id": 1})
        outcomes["remove"] = await session.execute("storyteller.providers.remove", {"id": 1})

        # The operations did what they should (so the scan below covers real work).
        for name in ["rejected add", "unreachable add", "wrong field", "rejected rotation"]:
            assert "error" in outcomes[name], (name, outcomes[name])
        for name in ["test", "add", "rotate", "list", "models", "session add", "remove"]:
            assert "result" in outcomes[name], (name, outcomes[name])
        assert outcomes["rejected add"]["error"]["data"] == {"kind": "invalidKey"}
        assert outcomes["unreachable add"]["error"]["data"] == {"kind": "network"}
        assert outcomes["list"]["result"][0]["keyHint"] == "••••" + ROTATED_SENTINEL[-4:]
        assert outcomes["remove"]["result"]["removed"] is True

        # The server really holds the manuscript (so its absence above means something).
        state = await session.request("storyteller/documentState", {"uri": uri})
        assert state["result"]["charLength"] == len(f"# Chapter 1\n\n{MANUSCRIPT_SENTINEL}.\n")

        await session.request("shutdown", None)
        await session.notify("exit", None)
        assert await server.wait() == 0
    finally:
        await server.stop()
    stderr = await asyncio.wait_for(stderr_task, PATIENCE)

    # Every LSP message the client received, as the bytes they were parsed from (re-encoded both
    # ways: JSON escapes could hide a sentinel from a byte scan of the raw form).
    messages = "\n".join(json.dumps(m, ensure_ascii=False) for m in session.received)
    messages_ascii = "\n".join(json.dumps(m) for m in session.received)
    places: dict[str, bytes] = {
        "LSP messages": messages.encode() + b"\n" + messages_ascii.encode(),
        "stderr": stderr,
    }
    for name in ["storyteller.db", "storyteller.db-wal", "storyteller.db-shm", "credentials.enc"]:
        path = data_dir / name
        if path.exists():
            places[name] = path.read_bytes()
    logs = sorted((data_dir / "logs").glob("*"))
    assert logs, "the server wrote a log file"
    for log in logs:
        places[f"logs/{log.name}"] = log.read_bytes()
    assert stderr, "debug logging was on: stderr is not empty"
    assert "storyteller.db" in places

    hits = [
        (sentinel, place)
        for sentinel in SENTINELS
        for place, content in places.items()
        if sentinel.encode() in content
    ]
    assert hits == [], f"sentinels found: {hits}"
