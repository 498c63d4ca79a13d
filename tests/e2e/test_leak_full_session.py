"""Secret and manuscript leak scan over a whole writing session (issue 10 item 5).

One session against the real binary, with trace logging on (``STORYTELLER_LOG=trace``): providers
are added through ``storyteller.providers.add`` with sentinel keys, the author writes (inline
completions, code actions), every fault the simulator knows hits both providers — including one
whose error message quotes the request, i.e. the manuscript — a key is rotated, the providers are
removed. Then every place the server could have written to is scanned for each sentinel (the
keys, and a sentence of the manuscript):

- every byte the server wrote to stdout (each LSP message, as sent, and re-encoded both ways),
- its stderr,
- every file under the data directory (database, ``-wal``, ``-shm``, ``credentials.enc``, lock
  files, ``logs/*``),
- every file under the ``TMPDIR`` the server was given (temporary files it created).

Zero hits. ``test_providers_security.py`` covers the provider commands alone at debug level.

The quoting fault (``echo_prompt``) is what found that vendor error messages reached the logs
with the manuscript in them (they were kept, cut to 300 characters, in every provider error's
detail); details now keep only the vendor's error code and type (``providers::classify``).
About 45 s, most of it the product's real retry back-off (1 s and more) under the faults.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

from conftest import PATIENCE, EditorSession, RawServer, Simulator, credentials_in_file

MANUSCRIPT_SENTINEL = "Odile folded the SENTINEL-ORCHARD-4b2f letter into the hymn book"
KEY_SENTINEL = "sk-SENTINEL-primary-9d3e7a1c55"
BACKUP_SENTINEL = "sk-ant-SENTINEL-backup-2f8c6b04"
ROTATED_SENTINEL = "sk-SENTINEL-rotated-71aa0e3d9b"
TEST_SENTINEL = "sk-SENTINEL-tested-5c1d9e2a77"
SENTINELS = [MANUSCRIPT_SENTINEL, KEY_SENTINEL, BACKUP_SENTINEL, ROTATED_SENTINEL, TEST_SENTINEL]

#: Every fault of the simulator's control API that acts on a completion request.
FAULTS: list[dict[str, Any]] = [
    {"fault": "invalid_key"},
    {"fault": "key_revoked"},
    {"fault": "forbidden"},
    {"fault": "model_not_found"},
    {"fault": "request_timeout"},
    {"fault": "rate_limit", "retryAfterSecs": 1},
    {"fault": "rate_limit_http_date", "retryAfterSecs": 1},
    {"fault": "rate_limit_ms", "retryAfterMs": 200},
    {"fault": "quota"},
    {"fault": "payment_required"},
    {"fault": "server_error"},
    {"fault": "bad_gateway"},
    {"fault": "unavailable"},
    {"fault": "gateway_timeout"},
    {"fault": "overloaded"},
    {"fault": "connection_refused"},
    {"fault": "reset_mid_stream"},
    {"fault": "malformed_json"},
    {"fault": "truncated_stream"},
    {"fault": "error_mid_stream"},
    {"fault": "content_filter"},
    {"fault": "slow_first_byte", "delayMs": 300},
    {"fault": "echo_prompt"},
]


class RecordingServer(RawServer):
    """The raw server, keeping every byte it writes to stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        super().__init__(process)
        self.stdout_bytes = bytearray()

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        length = None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise EOFError("the server closed its output")
            self.stdout_bytes += line
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None, "a frame without Content-Length"
        body = await self.process.stdout.readexactly(length)
        self.stdout_bytes += body
        return json.loads(body)


class Session(EditorSession):
    """Answers the server's requests like an editor (edits applied, Remove pressed) and keeps
    every message it received."""

    def answer_for(self, method: str, params: Any) -> Any:
        if method == "window/showMessageRequest":
            titles = [a["title"] for a in params.get("actions") or []]
            return {"title": "Remove"} if "Remove" in titles else None
        return super().answer_for(method, params)


def files_under(root: pathlib.Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


async def test_a_whole_session_leaks_no_key_and_no_manuscript_text_anywhere(
    server_command: list[str],
    server_env: dict[str, str],
    data_dir: pathlib.Path,
    simulator: Simulator,
    tmp_path: pathlib.Path,
):
    temp = tmp_path / "server-tmp"
    temp.mkdir()
    env = {**credentials_in_file(server_env), "STORYTELLER_LOG": "trace", "TMPDIR": str(temp)}
    workspace = tmp_path / "novel"
    (workspace / "notes").mkdir(parents=True)
    (workspace / "notes" / "odile.md").write_text("# Odile\n\nThe organist's daughter.\n")
    server = RecordingServer((await RawServer.start(server_command, env)).process)
    assert server.process.stderr is not None
    stderr_task = asyncio.create_task(server.process.stderr.read())
    session = Session(server)
    uri = (workspace / "chapter-1.md").as_uri()
    text = f"# Chapter 1\n\nThe choir had gone home. {MANUSCRIPT_SENTINEL}"
    end = {"line": 2, "character": len(text.split("\n")[-1].encode("utf-16-le")) // 2}
    inline_params = {
        "textDocument": {"uri": uri},
        "position": end,
        "context": {"triggerKind": 1},
    }
    generate = {"action": "continueScene", "uri": uri, "range": {"start": end, "end": end}}
    outcomes: dict[str, dict[str, Any]] = {}

    try:
        init = await session.request(
            "initialize",
            {
                "capabilities": {
                    "general": {"positionEncodings": ["utf-16"]},
                    "window": {"workDoneProgress": True, "showMessage": {"messageActionItem": {}}},
                    "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}, "configuration": True},
                    "textDocument": {"inlineCompletion": {}, "codeAction": {"disabledSupport": True}},
                },
                "workspaceFolders": [{"uri": workspace.as_uri(), "name": "novel"}],
                "initializationOptions": {
                    "credentialStore": "file",
                    "logLevel": "trace",
                    "inline": {"debounceMs": 0},
                    "actions": {"timeoutMs": 8000},
                },
            },
        )
        assert "result" in init
        await session.notify("initialized", {})
        await session.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": text}},
        )

        outcomes["test"] = await session.execute(
            "storyteller.providers.test",
            {"provider": "openai", "apiKey": TEST_SENTINEL, "endpoint": simulator.endpoint("openai")},
        )
        outcomes["add primary"] = await session.execute(
            "storyteller.providers.add",
            {"provider": "openai", "apiKey": KEY_SENTINEL, "endpoint": simulator.endpoint("openai"), "primary": True},
        )
        outcomes["add backup"] = await session.execute(
            "storyteller.providers.add",
            {"provider": "claude", "apiKey": BACKUP_SENTINEL, "endpoint": simulator.endpoint("claude")},
        )
        outcomes["inline"] = await session.request("textDocument/inlineCompletion", inline_params)
        outcomes["code actions"] = await session.request(
            "textDocument/codeAction",
            {"textDocument": {"uri": uri}, "range": {"start": end, "end": end}, "context": {"diagnostics": []}},
        )
        outcomes["generate"] = await session.execute("storyteller.generate", generate)

        # Every fault, on the next request to each provider (so a failover meets it too), for an
        # inline request and for an action.
        for fault in FAULTS:
            name = fault["fault"]
            for method, call in (
                ("inline", lambda: session.request("textDocument/inlineCompletion", inline_params)),
                ("generate", lambda: session.execute("storyteller.generate", generate)),
            ):
                for provider in ("openai", "claude"):
                    await simulator.inject(provider, times=1, **fault)
                outcomes[f"{method} under {name}"] = await call()
                await simulator.clear_faults()

        outcomes["rotate"] = await session.execute(
            "storyteller.providers.update", {"id": 1, "apiKey": ROTATED_SENTINEL}
        )
        outcomes["inline after rotation"] = await session.request("textDocument/inlineCompletion", inline_params)
        outcomes["list"] = await session.execute("storyteller.providers.list", {})
        outcomes["status"] = await session.execute("storyteller.status", {})
        outcomes["remove backup"] = await session.execute("storyteller.providers.remove", {"id": 2, "confirmed": True})
        outcomes["remove primary"] = await session.execute("storyteller.providers.remove", {"id": 1, "confirmed": True})

        # The session did real work (so the scan below means something).
        for name, outcome in outcomes.items():
            assert "result" in outcome or "error" in outcome, (name, outcome)
        for name in ["test", "add primary", "add backup", "rotate", "list", "remove backup", "remove primary"]:
            assert "result" in outcomes[name], (name, outcomes[name])
        assert outcomes["inline"]["result"]["items"], outcomes["inline"]
        assert outcomes["generate"]["result"]["applied"] is True, outcomes["generate"]
        assert outcomes["list"]["result"][0]["keyHint"] == "••••" + ROTATED_SENTINEL[-4:]
        recorded = await simulator.requests()
        echoed = [r for r in recorded if r.get("fault") == "echo_prompt"]
        assert echoed, "the echo fault was served"
        assert any(MANUSCRIPT_SENTINEL in json.dumps(r["body"], ensure_ascii=False) for r in echoed), (
            "the request the echo fault quoted held the manuscript sentence"
        )

        await session.request("shutdown", None)
        await session.notify("exit", None)
        assert await server.wait() == 0
    finally:
        await server.stop()
    stderr = await asyncio.wait_for(stderr_task, PATIENCE)

    places: dict[str, bytes] = {
        "stdout (raw)": bytes(server.stdout_bytes),
        "LSP messages (re-encoded)": (
            "\n".join(json.dumps(m, ensure_ascii=False) for m in session.received)
            + "\n"
            + "\n".join(json.dumps(m) for m in session.received)
        ).encode(),
        "stderr": stderr,
    }
    for name, content in files_under(data_dir).items():
        places[f"data/{name}"] = content
    for name, content in files_under(temp).items():
        places[f"tmp/{name}"] = content
    assert any(name.startswith("data/logs/") for name in places), "the server wrote a log file"
    assert "data/storyteller.db" in places
    assert "data/credentials.enc" in places
    assert len(stderr) > 10_000, "trace logging was on: stderr holds the session"

    hits = sorted(
        (sentinel, place)
        for sentinel in SENTINELS
        for place, content in places.items()
        if sentinel.encode() in content
    )
    assert hits == [], f"sentinels found: {hits}"
