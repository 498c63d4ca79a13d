"""Fixtures for the real-client tests: the built server binary driven over stdio.

Reusable by later suites:

- ``server_binary``: ``$STORYTELLER_BIN`` or ``target/debug/storyteller-lsp`` (build it first).
- ``data_dir`` / ``server_env``: a fresh ``STORYTELLER_DATA_DIR`` per test, and an environment
  without provider keys, so a developer's real keys are never used by a test.
- ``client``: a started (not yet initialized) pytest-lsp ``LanguageClient``; call
  ``initialize(client, capabilities)`` and ``client.shutdown_session()``.
- ``CLIENTS``: capability variants of real editors and synthetic ones, by name.
- ``RawServer``: the binary with bytes written and frames read directly, for malformed input.
- ``TextModel``: the document as the editor has it, edited in any position encoding.
- ``simulator``: the provider simulator process (``storyteller-lsp simulator``) with its control API.
- ``execute_command``: ``workspace/executeCommand`` with one argument object, the result as JSON;
  ``credentials_in_file``: the environment and settings that keep keys in the encrypted file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pathlib
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

#: Longest any single wait may take (generous; tests never assert on speed).
PATIENCE = 20.0

#: Environment variables that hold provider keys; removed from the server's environment.
KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",
    "YANDEX_API_KEY",
    "YANDEX_FOLDER_ID",
    "SCW_SECRET_KEY",
    "OPENROUTER_API_KEY",
    "STORYTELLER_CREDENTIALS_KEY",
)


def server_binary() -> pathlib.Path:
    configured = os.environ.get("STORYTELLER_BIN")
    path = pathlib.Path(configured) if configured else REPO_ROOT / "target/debug/storyteller-lsp"
    if not path.is_file():
        pytest.fail(f"server binary not found at {path}: run `cargo build` or set STORYTELLER_BIN")
    return path


def synthetic(**parts: Any) -> types.ClientCapabilities:
    """Capabilities from plain LSP JSON (camelCase), e.g. ``general={"positionEncodings": [...]}``."""
    from lsprotocol.converters import get_converter

    return get_converter().structure(parts, types.ClientCapabilities)


def _clients() -> dict[str, types.ClientCapabilities]:
    return {
        "bare": types.ClientCapabilities(),
        "utf-16": synthetic(general={"positionEncodings": ["utf-16"]}),
        "utf-8": synthetic(general={"positionEncodings": ["utf-16", "utf-8"]}),
        "utf-32": synthetic(general={"positionEncodings": ["utf-32"]}),
        "vscode": client_capabilities("visual-studio-code"),
        "neovim-0.11": client_capabilities("neovim@v0.11.0"),
        "emacs-29": client_capabilities("emacs"),
    }


CLIENTS = _clients()


@pytest.fixture
def data_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return directory


@pytest.fixture
def server_env(data_dir: pathlib.Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    env["STORYTELLER_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture
def server_command() -> list[str]:
    return [str(server_binary())]


@pytest_asyncio.fixture
async def client(server_command: list[str], server_env: dict[str, str]):
    config = ClientServerConfig(server_command=server_command, server_env=server_env)
    started = await config.start()
    yield started
    # pygls' stop() waits for the process without ending it: after a failed test the server
    # would still be reading stdin. Closing stdin is how an editor that died would end it.
    server = started._server
    if server is not None and server.returncode is None:
        if server.stdin is not None:
            server.stdin.close()
        try:
            await asyncio.wait_for(server.wait(), PATIENCE)
        except TimeoutError:
            server.kill()
            await server.wait()
    await started.stop()


async def initialize(
    client: LanguageClient,
    capabilities: types.ClientCapabilities,
    options: Any = None,
    workspace: pathlib.Path | None = None,
) -> types.InitializeResult:
    params = types.InitializeParams(
        capabilities=capabilities,
        initialization_options=options,
        workspace_folders=(
            [types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)]
            if workspace
            else None
        ),
    )
    return await asyncio.wait_for(client.initialize_session(params), PATIENCE)


async def document_state(client: LanguageClient, uri: str) -> dict[str, Any]:
    result = await asyncio.wait_for(
        client.protocol.send_request_async("storyteller/documentState", {"uri": uri}),
        PATIENCE,
    )
    return as_dict(result)


def as_dict(value: Any) -> Any:
    """pygls returns results of custom methods as namedtuples (or attrs objects): make JSON."""
    if isinstance(value, (dict, list, str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "_asdict"):  # pygls' namedtuple for results of unknown methods
        return {k: as_dict(v) for k, v in value._asdict().items()}
    from lsprotocol.converters import get_converter

    return get_converter().unstructure(value)


async def shown_message(client: LanguageClient, containing: str) -> types.ShowMessageParams:
    """The first ``window/showMessage`` containing the text, received already or later."""

    async def poll() -> types.ShowMessageParams:
        while True:
            for message in client.messages:
                if containing in message.message:
                    return message
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(poll(), PATIENCE)


async def execute_command(
    client: LanguageClient, command: str, arguments: dict[str, Any] | None = None
) -> Any:
    """``workspace/executeCommand`` with one argument object; the result as plain JSON. A failure
    raises pygls' ``JsonRpcException`` (``.code``, ``.message``, ``.data``)."""
    params = types.ExecuteCommandParams(command=command, arguments=[arguments or {}])
    result = await asyncio.wait_for(client.workspace_execute_command_async(params), PATIENCE)
    return as_dict(result)


#: The secret the encrypted credentials file is keyed with in tests that store keys there.
TEST_CREDENTIALS_KEY = "e2e-credentials-key-0c4f7a1d"


def credentials_in_file(env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``STORYTELLER_CREDENTIALS_KEY`` set, so that ``{"credentialStore": "file"}``
    works on machines without a machine id (CI containers) and never touches a real keychain."""
    return {**env, "STORYTELLER_CREDENTIALS_KEY": TEST_CREDENTIALS_KEY}


def exit_code(client: LanguageClient) -> int | None:
    server = client._server  # pygls keeps the process here; no public accessor.
    return None if server is None else server.returncode


class TextModel:
    """The editor's copy of a document: LSP line breaks, positions in a chosen encoding."""

    def __init__(self, text: str, encoding: str) -> None:
        self.text = text
        self.encoding = encoding

    def _units(self, char: str) -> int:
        if self.encoding == "utf-8":
            return len(char.encode("utf-8"))
        if self.encoding == "utf-16":
            return len(char.encode("utf-16-le")) // 2
        return 1

    def line_spans(self) -> list[tuple[int, int]]:
        spans, start, i, text = [], 0, 0, self.text
        while i < len(text):
            if text[i] == "\n":
                spans.append((start, i))
                i += 1
                start = i
            elif text[i] == "\r":
                spans.append((start, i))
                i += 2 if text[i + 1 : i + 2] == "\n" else 1
                start = i
            else:
                i += 1
        spans.append((start, len(text)))
        return spans

    def index(self, line: int, character: int) -> int:
        start, end = self.line_spans()[line]
        counted = 0
        for i in range(start, end):
            if counted == character:
                return i
            counted += self._units(self.text[i])
            if counted > character:
                raise ValueError("inside a character")
        return end

    def position(self, index: int) -> types.Position:
        """The position of a code-point index (used to build edits)."""
        for line, (start, end) in enumerate(self.line_spans()):
            if start <= index <= end:
                units = sum(self._units(c) for c in self.text[start:index])
                return types.Position(line=line, character=units)
        raise ValueError("index outside the text")

    def edit(self, start: int, end: int, new_text: str) -> types.TextDocumentContentChangePartial:
        """Replaces code points ``start..end``; returns the LSP change that says so."""
        change = types.TextDocumentContentChangePartial(
            range=types.Range(start=self.position(start), end=self.position(end)),
            text=new_text,
        )
        a = self.index(change.range.start.line, change.range.start.character)
        b = self.index(change.range.end.line, change.range.end.character)
        self.text = self.text[:a] + new_text + self.text[b:]
        return change

    def expected_state(self, version: int) -> dict[str, Any]:
        data = self.text.encode("utf-8")
        return {
            "version": version,
            "lineCount": len(self.line_spans()),
            "utf16Length": len(self.text.encode("utf-16-le")) // 2,
            "charLength": len(self.text),
            "byteLength": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "inSync": True,
        }


class RawServer:
    """The server binary driven with raw bytes on stdin, for what a well-behaved client never sends."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, command: list[str], env: dict[str, str]) -> RawServer:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(process)

    async def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode("utf-8")
        await self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def read(self) -> dict[str, Any]:
        return await asyncio.wait_for(self._read(), PATIENCE)

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        length = None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise EOFError("the server closed its output")
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None, "a frame without Content-Length"
        return json.loads(await self.process.stdout.readexactly(length))

    async def read_response(self, id_: Any) -> dict[str, Any]:
        """The response with ``id_``, skipping the server's notifications."""
        while True:
            message = await self.read()
            if "method" not in message and message.get("id") == id_:
                return message

    async def wait(self) -> int:
        return await asyncio.wait_for(self.process.wait(), PATIENCE)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class EditorSession:
    """A raw LSP session that answers the server's requests like an editor and keeps every message
    it received. Subclasses decide the answers (:meth:`answer_for`)."""

    def __init__(self, server: RawServer) -> None:
        self.server = server
        self.received: list[dict[str, Any]] = []
        self.next_id = 1

    async def request(self, method: str, params: Any) -> dict[str, Any]:
        id_ = self.next_id
        self.next_id += 1
        await self.server.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        while True:
            message = await self.server.read()
            self.received.append(message)
            if "method" in message and "id" in message:
                result = self.answer_for(message["method"], message.get("params"))
                await self.server.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            elif "method" not in message and message.get("id") == id_:
                return message

    def answer_for(self, method: str, params: Any) -> Any:
        """The result for a request of the server: no settings, edits applied, no button."""
        if method == "workspace/configuration":
            return [None for _ in params["items"]]
        if method == "workspace/applyEdit":
            return {"applied": True}
        return None

    async def notify(self, method: str, params: Any) -> None:
        await self.server.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def execute(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.request(
            "workspace/executeCommand", {"command": command, "arguments": [arguments]}
        )


@pytest_asyncio.fixture
async def raw_server(server_command: list[str], server_env: dict[str, str]):
    server = await RawServer.start(server_command, server_env)
    yield server
    await server.stop()


class Simulator:
    """The built-in provider simulator (``storyteller-lsp simulator``) as a separate process on
    127.0.0.1, with its HTTP control API (see ``src/simulator/mod.rs``)."""

    #: Base URL path of each provider kind under the simulator (DESIGN.md §5 endpoint rule).
    PREFIXES = {
        "openai": "/openai/v1",
        "deepseek": "/deepseek",
        "scaleway": "/scaleway/v1",
        "openrouter": "/openrouter/api/v1",
        "custom": "/custom/v1",
        "claude": "/claude/v1",
        "gemini": "/gemini/v1beta",
        "yandex": "/yandex/foundationModels/v1",
    }

    def __init__(self, process: asyncio.subprocess.Process, base_url: str):
        self.process = process
        self.base_url = base_url

    def endpoint(self, provider: str) -> str:
        return self.base_url + self.PREFIXES[provider]

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        """One request to the control API (``/_sim/...``); returns the decoded JSON (or None)."""
        import urllib.request

        def call() -> Any:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(
                self.base_url + path,
                data=data,
                method=method,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=PATIENCE) as response:
                raw = response.read()
            return json.loads(raw) if raw.strip() else None

        return await asyncio.to_thread(call)

    async def inject(self, provider: str, fault: str, times: int | None = None, **extra: Any) -> None:
        body = {"provider": provider, "fault": fault, **extra}
        if times is not None:
            body["times"] = times
        await self.control("POST", "/_sim/faults", body)

    async def clear_faults(self) -> None:
        await self.control("DELETE", "/_sim/faults")

    async def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        path = "/_sim/requests" + (f"?provider={provider}" if provider else "")
        result = await self.control("GET", path)
        return result if isinstance(result, list) else (result or {}).get("requests", [])

    async def clear_requests(self) -> None:
        await self.control("DELETE", "/_sim/requests")

    async def script_replies(self, provider: str, texts: list[str]) -> None:
        """Queues ``texts`` as the verbatim answers of the next generation requests to
        ``provider``, one each (``POST /_sim/replies``); the prose generator answers after them."""
        await self.control("POST", "/_sim/replies", {"provider": provider, "texts": texts})


@pytest_asyncio.fixture
async def simulator():
    """A running simulator process; stopped (stdin closed) after the test."""
    process = await asyncio.create_subprocess_exec(
        str(server_binary()),
        "simulator",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), PATIENCE)).decode().strip()
    prefix = "storyteller simulator listening on "
    if not line.startswith(prefix):
        process.kill()
        pytest.fail(f"unexpected first line from the simulator: {line!r}")
    sim = Simulator(process, line[len(prefix) :].rstrip("/"))
    yield sim
    if process.stdin is not None:
        process.stdin.close()
    try:
        await asyncio.wait_for(process.wait(), PATIENCE)
    except TimeoutError:
        process.kill()
        await process.wait()


# --- Providers configured against the simulator (writing-feature suites) -----------------------

#: Catalogue display name, default model and system-key variable of the kinds the suites use.
PROVIDER_CATALOGUE = {
    "openai": ("OpenAI", "gpt-4o", "OPENAI_API_KEY"),
    "claude": ("Anthropic Claude", "claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
    "gemini": ("Google Gemini", "gemini-2.5-flash", "GEMINI_API_KEY"),
    "deepseek": ("DeepSeek", "deepseek-flash", "DEEPSEEK_API_KEY"),
    "scaleway": ("Scaleway (EU)", "mistral-small-3.2-24b-instruct-2506", "SCW_SECRET_KEY"),
    # Needs no key; the variable is never read.
    "custom": ("Custom (OpenAI-compatible)", "llama3.2", "STORYTELLER_E2E_UNUSED_CUSTOM_KEY"),
}


def unreachable_endpoint() -> str:
    """A loopback URL on which nothing listens (connection refused): a provider that is offline."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def provider_env(server_env: dict[str, str]) -> dict[str, str]:
    """``server_env`` with made-up system keys for every vendor (the simulator accepts any key);
    the server resolves them when no project key is stored."""
    for _, _, variable in PROVIDER_CATALOGUE.values():
        server_env[variable] = f"sk-e2e-{variable.lower()}-0001"
    server_env["STORYTELLER_CREDENTIALS_KEY"] = "e2e-throwaway-credentials-key"
    return server_env


def read_code_actions_by_shape(client: LanguageClient) -> None:
    """lsprotocol 2025.0 reads every code action that has a ``command`` as a bare ``Command``
    (its hook tests for the key, but a ``CodeAction`` may carry a command object too): decide by
    the type of ``command`` instead, as the LSP specification does."""
    from typing import Union

    converter = client.protocol._converter

    def hook(obj: Any, _: type):
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], hook)


@pytest_asyncio.fixture
async def ai_client(server_command: list[str], provider_env: dict[str, str]):
    """Like ``client``, with the system keys of ``provider_env`` in the server's environment."""
    config = ClientServerConfig(server_command=server_command, server_env=provider_env)
    started = await config.start()
    read_code_actions_by_shape(started)
    yield started
    server = started._server
    if server is not None and server.returncode is None:
        if server.stdin is not None:
            server.stdin.close()
        try:
            await asyncio.wait_for(server.wait(), PATIENCE)
        except TimeoutError:
            server.kill()
            await server.wait()
    await started.stop()


async def _create_database(command: list[str], env: dict[str, str]) -> None:
    """Runs the server once so that it creates and migrates the database of ``env``."""
    server = await RawServer.start(command, env)
    try:
        await server.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
        await server.read_response(1)
        await server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        # Answered once start-up (database, prompts) is done.
        await server.send(
            {"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand",
             "params": {"command": "storyteller.prompts.list", "arguments": [{}]}}
        )
        await server.read_response(2)
        await server.send({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
        await server.read_response(3)
        await server.send({"jsonrpc": "2.0", "method": "exit"})
        await server.wait()
    finally:
        await server.stop()


@pytest.fixture
def configured_providers(server_command: list[str], provider_env: dict[str, str], data_dir: pathlib.Path):
    """Configures AI providers for a session that is about to be initialized.

    ``await configured_providers([("openai", endpoint), ("claude", endpoint)], root=None)``:
    the first is primary; ``root`` is the workspace folder whose project gets them (``None``: the
    default project, for documents outside every folder). Keys are the system keys of
    ``provider_env``. A third member, a dict, is the row's ``options`` (``{"euResident": True}``).

    The one place that knows how providers are stored: until ``storyteller.providers.add`` is on
    main, rows go straight into ``ai_providers`` (Python's sqlite3) after the server has created
    the database; switching to the command later changes only this fixture.
    """
    import sqlite3

    async def configure(providers: list[tuple[str, str]], root: pathlib.Path | None = None) -> None:
        await _create_database(server_command, provider_env)
        db = sqlite3.connect(data_dir / "storyteller.db")
        try:
            with db:
                if root is None:
                    project = db.execute("SELECT id FROM projects WHERE root_path IS NULL").fetchone()[0]
                else:
                    path = str(root.resolve())
                    db.execute(
                        "INSERT OR IGNORE INTO projects (name, root_path) VALUES (?, ?)", (root.name, path)
                    )
                    project = db.execute("SELECT id FROM projects WHERE root_path = ?", (path,)).fetchone()[0]
                for position, (kind, endpoint, *rest) in enumerate(providers):
                    name, model, _ = PROVIDER_CATALOGUE[kind]
                    options = json.dumps(rest[0] if rest else {})
                    db.execute(
                        "INSERT INTO ai_providers (project_id, provider_name, display_name, api_endpoint,"
                        " model_name, is_primary, is_active, position, options)"
                        " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                        (project, kind, name, endpoint, model, 1 if position == 0 else 0, position, options),
                    )
        finally:
            db.close()

    return configure


def rich_capabilities(encoding: str = "utf-16", **overrides: Any) -> types.ClientCapabilities:
    """An editor with everything the writing features use: inline completion, progress, message
    buttons, versioned edits, disabled code actions, the StoryTeller extras."""
    parts: dict[str, Any] = {
        "general": {"positionEncodings": [encoding]},
        "window": {"workDoneProgress": True, "showMessage": {"messageActionItem": {"additionalPropertiesSupport": False}}},
        "workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}},
        "textDocument": {"codeAction": {"disabledSupport": True}, "inlineCompletion": {}},
        "experimental": {"storyteller": {"openSettings": True, "statusNotification": True}},
    }
    parts.update(overrides)
    return synthetic(**parts)


class Recorder:
    """Records and answers the server's requests to the editor: applies nothing, answers
    ``workspace/applyEdit`` with ``applied``, presses a button of a message request when its text
    contains a key of ``presses``."""

    def __init__(self, client: LanguageClient, applied: bool = True) -> None:
        self.edits: list[Any] = []
        self.requests: list[types.ShowMessageRequestParams] = []
        self.notifications: dict[str, list[Any]] = {}
        self.presses: dict[str, str] = {}

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams):
            self.edits.append(params)
            return types.ApplyWorkspaceEditResult(applied=applied)

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def show_message_request(params: types.ShowMessageRequestParams):
            self.requests.append(params)
            for needle, title in self.presses.items():
                if needle in params.message:
                    return types.MessageActionItem(title=title)
            return None

        for method in ("storyteller/status", "storyteller/openSettings"):
            self._record(client, method)

    def _record(self, client: LanguageClient, method: str) -> None:
        @client.feature(method)
        def record(params: Any):
            self.notifications.setdefault(method, []).append(as_dict(params))



async def wait_until(condition, what: str = "the server") -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), PATIENCE)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def code_actions(
    client: LanguageClient, uri: str, range_: types.Range, only: list[str] | None = None
) -> list[Any]:
    """``textDocument/codeAction`` for ``range_`` of ``uri`` (no diagnostics)."""
    result = await asyncio.wait_for(
        client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=range_,
                context=types.CodeActionContext(diagnostics=[], only=only),
            )
        ),
        PATIENCE,
    )
    return list(result or [])
