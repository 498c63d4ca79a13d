"""Helix against the real server: a pytest-lsp client announcing exactly what Helix 25.07.1 sends
(tests/e2e/clients/helix_v25.07.1.json — no inline completion, no window/showMessageRequest) proves
the fallbacks DESIGN.md §3 promises such a client: continuations as a completion item, code actions
applied with workspace/applyEdit, and prompts turned into plain messages that name the CLI.

Each test skips, saying why, while the binary lacks what it needs."""

import asyncio
import json
import os
import pathlib
import re
import subprocess
import tempfile
import threading

import pytest
import pytest_lsp
from lsprotocol import types
from lsprotocol.converters import get_converter
from pytest_lsp import ClientServerConfig, LanguageClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("STORYTELLER_BIN", ROOT / "target" / "debug" / "storyteller-lsp"))
HELIX = json.loads((pathlib.Path(__file__).parent / "clients" / "helix_v25.07.1.json").read_text())
CAPABILITIES = get_converter().structure(HELIX["capabilities"], types.ClientCapabilities)
VENDOR_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY", "YANDEX_API_KEY", "YANDEX_FOLDER_ID", "SCW_SECRET_KEY")
CHAPTER = "# Chapter One\n\nMara pushed open the lighthouse door. The stairs spiralled up into the dark, and somewhere above her"
SETTINGS = {"storyteller": {"credentialStore": "file", "inline": {"debounceMs": 0}}}


def server_env(data_dir):
    env = {k: v for k, v in os.environ.items() if k not in VENDOR_KEYS}
    env.update(STORYTELLER_DATA_DIR=data_dir, STORYTELLER_CREDENTIALS_KEY="editors-test-credentials-key", STORYTELLER_LOG="warn")
    return env


CONFIGURED_DIR = tempfile.mkdtemp(prefix="storyteller-helix-")
UNCONFIGURED_DIR = tempfile.mkdtemp(prefix="storyteller-helix-empty-")


def frame(message):
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def probe_initialize():
    """Raw initialize with Helix's capabilities; the server's capabilities, or a reason to skip."""
    if not BIN.exists():
        return None, f"server binary not found at {BIN} (cargo build, or set STORYTELLER_BIN)"
    with tempfile.TemporaryDirectory() as data_dir:
        proc = subprocess.Popen([str(BIN), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=server_env(data_dir))
        answer = {}

        def read():
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = proc.stdout.read(1)
                if not byte:
                    return
                header += byte
            length = int(re.search(rb"Content-Length: (\d+)", header).group(1))
            answer["message"] = json.loads(proc.stdout.read(length))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            proc.stdin.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": os.getpid(), "rootUri": None, "capabilities": HELIX["capabilities"], "initializationOptions": SETTINGS}}))
            proc.stdin.flush()
        except BrokenPipeError:
            pass
        reader.join(15)
        proc.kill()
        proc.wait()
    result = answer.get("message", {}).get("result")
    if not result:
        return None, f"{BIN} does not serve LSP yet (no initialize result)"
    return result.get("capabilities", {}), None


PROBE = probe_initialize()


def require(completion=False, code_actions=False, commands=()):
    caps, reason = PROBE
    if reason:
        pytest.skip(reason)
    missing = []
    if completion and not caps.get("completionProvider"):
        missing.append("it does not advertise completionProvider")
    if code_actions and not caps.get("codeActionProvider"):
        missing.append("it does not advertise codeActionProvider")
    advertised = (caps.get("executeCommandProvider") or {}).get("commands", [])
    absent = [c for c in commands if c not in advertised]
    if absent:
        missing.append("executeCommandProvider.commands lacks " + ", ".join(absent))
    if missing:
        pytest.skip("the server is not ready for this test: " + "; ".join(missing))


@pytest.fixture(scope="module")
def simulator():
    caps, reason = PROBE
    if reason:
        pytest.skip(reason)
    proc = subprocess.Popen([str(BIN), "simulator"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=server_env(UNCONFIGURED_DIR))
    line = {}
    reader = threading.Thread(target=lambda: line.setdefault("text", proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(15)
    match = re.search(r"storyteller simulator listening on (http://127\.0\.0\.1:\d+)", line.get("text", ""))
    if not match:
        proc.kill()
        pytest.skip(f"`storyteller-lsp simulator` is not available yet: it printed {line.get('text', '').strip()!r}")
    yield match.group(1)
    proc.kill()
    proc.wait()


class HelixClient:
    """What Helix does on the wire that pytest-lsp's client does not do by itself."""

    def __init__(self, client: LanguageClient):
        self.client = client
        self.message_requests = []
        self.applied_edits = []

        @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
        def show_message_request(params):
            # Helix 25.07.1 never receives this: it does not announce window.showMessage.
            self.message_requests.append(params)
            return None

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams):
            self.applied_edits.append(params.edit)
            return types.ApplyWorkspaceEditResult(applied=True)

    async def initialize(self, root):
        return await self.client.initialize_session(
            types.InitializeParams(
                capabilities=CAPABILITIES,
                client_info=types.ClientInfo(**HELIX["clientInfo"]),
                root_uri=pathlib.Path(root).as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=pathlib.Path(root).as_uri(), name="manuscript")],
                initialization_options=SETTINGS,
            )
        )

    def open(self, path, text=CHAPTER):
        uri = pathlib.Path(path).as_uri()
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(uri=uri, language_id="markdown", version=1, text=text)))
        return uri


def end_of(text):
    lines = text.split("\n")
    # Helix negotiates utf-8 when offered (it lists utf-8 first); the last line is ASCII here.
    return types.Position(line=len(lines) - 1, character=len(lines[-1].encode()))


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[str(BIN), "serve"], server_env=server_env(CONFIGURED_DIR)))
async def helix(lsp_client: LanguageClient):
    require()
    lsp_client.set_configuration(SETTINGS["storyteller"], section="storyteller")
    wrapped = HelixClient(lsp_client)
    await wrapped.initialize(CONFIGURED_DIR)
    yield wrapped
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[str(BIN), "serve"], server_env=server_env(UNCONFIGURED_DIR)))
async def helix_unconfigured(lsp_client: LanguageClient):
    require()
    lsp_client.set_configuration(SETTINGS["storyteller"], section="storyteller")
    wrapped = HelixClient(lsp_client)
    await wrapped.initialize(UNCONFIGURED_DIR)
    yield wrapped
    await lsp_client.shutdown_session()


async def add_provider(helix, simulator):
    # Helix users add providers with `storyteller-lsp provider add`; the test uses the same
    # operation through the executeCommand contract.
    return await helix.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="storyteller.providers.add", arguments=[{"provider": "openai", "apiKey": "sk-helix-good-key-2468", "endpoint": f"{simulator}/openai/v1", "primary": True}])
    )


@pytest.mark.asyncio
async def test_helix_gets_the_continuation_as_a_completion_item(helix, simulator):
    require(completion=True, commands=["storyteller.providers.add"])
    await add_provider(helix, simulator)
    uri = helix.open(os.path.join(CONFIGURED_DIR, "chapter-01.md"))
    completion = await helix.client.text_document_completion_async(types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=end_of(CHAPTER)))
    items = completion.items if isinstance(completion, types.CompletionList) else (completion or [])
    assert len(items) == 1, f"one continuation item, got {items!r}"
    item = items[0]
    text = item.text_edit.new_text if item.text_edit else (item.insert_text or item.label)
    assert text.strip(), "the item carries the continuation"


@pytest.mark.asyncio
async def test_helix_code_actions_are_listed_and_applied(helix, simulator):
    require(code_actions=True, commands=["storyteller.providers.add", "storyteller.generate"])
    listed = await helix.client.workspace_execute_command_async(types.ExecuteCommandParams(command="storyteller.providers.list", arguments=[{}]))
    if not listed:
        await add_provider(helix, simulator)
    uri = helix.open(os.path.join(CONFIGURED_DIR, "chapter-02.md"))
    end = end_of(CHAPTER)
    actions = await helix.client.text_document_code_action_async(
        types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=end, end=end), context=types.CodeActionContext(diagnostics=[]))
    )
    assert actions, "code actions are offered at the cursor (space-a in Helix)"
    action = next((a for a in actions if "continue" in a.title.lower()), actions[0])
    assert action.kind and "storyteller" in action.kind
    assert action.disabled is None, f"a configured provider leaves actions enabled: {action.disabled}"
    if action.command is None and action.edit is None:
        action = await helix.client.code_action_resolve_async(action)
    if action.command:
        await helix.client.workspace_execute_command_async(types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments))
    assert action.edit or helix.applied_edits, "the action's text arrives as a workspace edit"
    edit = action.edit or helix.applied_edits[-1]
    new_texts = [e.new_text for change in (edit.document_changes or []) for e in change.edits] + [e.new_text for edits in (edit.changes or {}).values() for e in edits]
    assert any(t.strip() for t in new_texts), "the edit writes text"
    assert helix.message_requests == [], "no window/showMessageRequest to a client that did not announce it"


@pytest.mark.asyncio
async def test_helix_prompts_become_plain_messages_naming_the_cli(helix_unconfigured):
    require(completion=True, code_actions=True)
    uri = helix_unconfigured.open(os.path.join(UNCONFIGURED_DIR, "chapter-01.md"))
    end = end_of(CHAPTER)
    actions = await helix_unconfigured.client.text_document_code_action_async(
        types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=end, end=end), context=types.CodeActionContext(diagnostics=[]))
    )
    for action in actions or []:
        if action.kind and "storyteller" in action.kind:
            assert action.disabled and action.disabled.reason, f"{action.title} is shown disabled with a reason while not configured"
    await helix_unconfigured.client.text_document_completion_async(types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=end))
    for _ in range(100):
        if any("storyteller-lsp provider" in m.message for m in helix_unconfigured.client.messages):
            break
        await asyncio.sleep(0.1)
    texts = [m.message for m in helix_unconfigured.client.messages]
    assert any("storyteller-lsp provider" in t for t in texts), f"a plain message names the CLI command: {texts}"
    assert helix_unconfigured.message_requests == [], "no window/showMessageRequest to Helix 25.07"
