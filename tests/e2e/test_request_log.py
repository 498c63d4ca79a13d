"""The request log, last used and closing the database (issue 15, "state the author expects to
survive"), over a real session of the built binary against the simulator.

- every provider request of the session (ghost text, an action) becomes a ``request_log`` row
  with provider, model, action, outcome, latency and tokens, and moves ``last_used_at``;
- ``storyteller.providers.list`` shows ``lastUsedAt`` and ``medianLatencyMs``;
- after ``shutdown``/``exit`` the ``-wal`` is gone (checkpointed and closed): a copy of
  ``storyteller.db`` alone holds the rows;
- the database holds no manuscript text and no key;
- ``storyteller-lsp provider stats --json`` reports the session.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import shutil
import sqlite3
import time
from typing import Any

from conftest import EditorSession, RawServer, Simulator, credentials_in_file

MANUSCRIPT = "Maren counted the SENTINEL-LEDGER-7c1e gulls on the breakwater"
KEY = "sk-SENTINEL-requestlog-4b8d2e"


def initialize_params(workspace: pathlib.Path) -> dict[str, Any]:
    return {
        "capabilities": {
            "general": {"positionEncodings": ["utf-16"]},
            "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}, "configuration": True},
            "textDocument": {"inlineCompletion": {}},
        },
        "workspaceFolders": [{"uri": workspace.as_uri(), "name": "novel"}],
        "initializationOptions": {"credentialStore": "file", "inline": {"debounceMs": 0}},
    }


async def test_a_session_logs_its_requests_and_leaves_them_in_the_db_file_alone(
    server_command: list[str],
    server_env: dict[str, str],
    data_dir: pathlib.Path,
    simulator: Simulator,
    tmp_path: pathlib.Path,
):
    env = credentials_in_file(server_env)
    workspace = tmp_path / "novel"
    workspace.mkdir()
    uri = (workspace / "chapter-1.md").as_uri()
    text = f"# Chapter 1\n\nThe tide was turning. {MANUSCRIPT}"
    end = {"line": 2, "character": len(text.split("\n")[-1])}

    server = await RawServer.start(server_command, env)
    session = EditorSession(server)
    try:
        assert "result" in await session.request("initialize", initialize_params(workspace))
        await session.notify("initialized", {})
        await session.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": text}},
        )
        added = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": KEY, "endpoint": simulator.endpoint("openai")},
        )
        assert added["result"]["id"] == 1, added
        listed = (await session.execute("storyteller.providers.list", {}))["result"]
        assert listed[0]["lastUsedAt"] is None and listed[0]["medianLatencyMs"] is None, listed

        inline = await session.request(
            "textDocument/inlineCompletion",
            {"textDocument": {"uri": uri}, "position": end, "context": {"triggerKind": 1}},
        )
        assert inline["result"]["items"], inline
        generated = await session.execute(
            "storyteller.generate",
            {"action": "continueScene", "uri": uri, "range": {"start": end, "end": end}},
        )
        assert generated["result"]["applied"] is True, generated

        # The writer is off the request path: the list shows the log once it is written.
        deadline = time.monotonic() + 10
        while True:
            listed = (await session.execute("storyteller.providers.list", {}))["result"]
            if listed[0]["medianLatencyMs"] is not None or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert listed[0]["lastUsedAt"], listed
        assert isinstance(listed[0]["medianLatencyMs"], int), listed

        await session.request("shutdown", None)
        await session.notify("exit", None)
        assert await server.wait() == 0
    finally:
        await server.stop()

    # Checkpointed and closed: no write-ahead log left beside the database.
    wal = data_dir / "storyteller.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0, f"-wal holds {wal.stat().st_size} bytes"

    # A backup of the .db file alone holds the session.
    backup = tmp_path / "backup" / "storyteller.db"
    backup.parent.mkdir()
    shutil.copyfile(data_dir / "storyteller.db", backup)
    db = sqlite3.connect(backup)
    try:
        rows = db.execute(
            "SELECT provider_id, provider_name, model, action, outcome, latency_ms, input_tokens, output_tokens "
            "FROM request_log ORDER BY id"
        ).fetchall()
        last_used = db.execute("SELECT last_used_at FROM ai_providers WHERE id = 1").fetchone()[0]
    finally:
        db.close()
    actions = {row[3] for row in rows}
    assert {"inline", "continueScene"} <= actions, rows
    for provider_id, name, model, _action, outcome, latency, tokens_in, tokens_out in rows:
        assert (provider_id, name, model) == (1, "openai", "gpt-4o"), rows
        assert outcome in ("ok", "cancelled"), rows
        assert latency >= 0
        if outcome == "ok":
            assert tokens_in is not None and tokens_in > 0 and tokens_out is not None, rows
    assert any(row[4] == "ok" for row in rows), rows
    assert last_used, "last_used_at is written"

    # No text of the manuscript and no key anywhere in the database files.
    for path in data_dir.iterdir():
        if path.name.startswith("storyteller.db"):
            content = path.read_bytes()
            assert b"SENTINEL-LEDGER" not in content, path
            assert KEY.encode() not in content, path

    # The terminal's view of the same log.
    process = await asyncio.create_subprocess_exec(
        *server_command,
        "provider",
        "stats",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    stats = json.loads(out)
    assert len(stats) == 1, stats
    assert stats[0]["providerId"] == 1 and stats[0]["provider"] == "openai", stats
    assert stats[0]["displayName"] == "OpenAI"
    assert stats[0]["requests"] == len(rows)
    assert stats[0]["ok"] == sum(1 for row in rows if row[4] == "ok")
    assert stats[0]["medianLatencyMs"] is not None and stats[0]["p95LatencyMs"] >= stats[0]["medianLatencyMs"]
    assert stats[0]["inputTokens"] > 0
    assert stats[0]["lastUsedAt"]
