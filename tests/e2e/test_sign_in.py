""""Sign in with OpenRouter" over LSP (issue 15) against the simulator's stand-in for OpenRouter's
authorization page and code exchange, with raw JSON-RPC frames so every byte the server writes is
seen.

The editor answers ``window/showDocument`` as a browser would: it fetches the authorization URL,
whose stand-in redirects to the server's loopback callback with ``?code=``. Also: the code pasted
with ``storyteller.providers.signInCode`` when the editor cannot open a browser, a wrong code, a
declined sign-in, and cancelling with ``$/cancelRequest`` (the listener closes). Neither the key
nor the code appears in any message, the log or the database.
"""

from __future__ import annotations

import asyncio
import pathlib
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from conftest import PATIENCE, RawServer, Simulator, credentials_in_file

#: Every key the stand-in issues starts with this.
KEY_PREFIX = "sk-or-v1-sim"
CODE_PREFIX = "sim-code-"


@pytest.fixture
def sign_in_env(server_env: dict[str, str], simulator: Simulator) -> dict[str, str]:
    return {
        **credentials_in_file(server_env),
        "STORYTELLER_LOG": "debug",
        "STORYTELLER_OPENROUTER_AUTH_URL": simulator.base_url + "/openrouter/auth",
        "STORYTELLER_OPENROUTER_API_URL": simulator.endpoint("openrouter"),
    }


def browse(url: str) -> tuple[int, str]:
    """A browser: follows the auth page's redirect to the callback; (status, page)."""
    try:
        with urllib.request.urlopen(url, timeout=PATIENCE) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def code_from_redirect(url: str) -> str:
    """The code the auth page hands back, read from its redirect (what an author on a remote
    machine copies from the address bar)."""
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=PATIENCE)
    except urllib.error.HTTPError as e:
        assert e.code == 302
        location = e.headers["Location"]
        return urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"][0]
    raise AssertionError("no redirect")


class Editor:
    """A raw session: keeps every message, answers ``window/showDocument`` with ``on_show``."""

    def __init__(self, server: RawServer) -> None:
        self.server = server
        self.received: list[dict[str, Any]] = []
        self.responses: dict[int, dict[str, Any]] = {}
        self.shown: list[dict[str, Any]] = []
        self.browsed: list[asyncio.Future[Any]] = []
        self.next_id = 1
        self.browser = "follow"  # follow | none | deny

    async def send_request(self, method: str, params: Any) -> int:
        id_ = self.next_id
        self.next_id += 1
        await self.server.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        return id_

    async def pump_until(self, done) -> None:
        async def loop() -> None:
            while not done():
                message = await self.server.read()
                self.received.append(message)
                if "method" in message and "id" in message:
                    await self.server.send(
                        {"jsonrpc": "2.0", "id": message["id"], "result": self.answer(message)}
                    )
                elif "method" not in message:
                    self.responses[message["id"]] = message

        await asyncio.wait_for(loop(), PATIENCE)

    async def response(self, id_: int) -> dict[str, Any]:
        await self.pump_until(lambda: id_ in self.responses)
        return self.responses[id_]

    async def request(self, method: str, params: Any) -> dict[str, Any]:
        return await self.response(await self.send_request(method, params))

    async def execute(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.request(
            "workspace/executeCommand", {"command": command, "arguments": [arguments]}
        )

    def answer(self, message: dict[str, Any]) -> Any:
        method = message["method"]
        if method == "window/showDocument":
            self.shown.append(message["params"])
            uri = message["params"]["uri"]
            if self.browser == "none":
                return {"success": False}
            if self.browser == "deny":
                uri += "&deny=1"
            self.browsed.append(asyncio.get_running_loop().run_in_executor(None, browse, uri))
            return {"success": True}
        if method == "workspace/configuration":
            return [None for _ in message["params"]["items"]]
        return None


async def start(command: list[str], env: dict[str, str]) -> tuple[RawServer, Editor, asyncio.Task]:
    server = await RawServer.start(command, env)
    assert server.process.stderr is not None
    stderr = asyncio.create_task(server.process.stderr.read())
    editor = Editor(server)
    init = await editor.request(
        "initialize",
        {
            "capabilities": {"window": {"showDocument": {"support": True}}},
            "initializationOptions": {"credentialStore": "file", "logLevel": "debug"},
        },
    )
    assert "result" in init
    await server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    return server, editor, stderr


async def stop(server: RawServer, editor: Editor) -> None:
    await editor.request("shutdown", None)
    await server.send({"jsonrpc": "2.0", "method": "exit"})
    assert await asyncio.wait_for(server.wait(), PATIENCE) == 0


def assert_nothing_leaked(editor: Editor, stderr: str, data_dir: pathlib.Path) -> None:
    import json

    everything = json.dumps(editor.received) + stderr
    for path in data_dir.rglob("*"):
        if path.is_file() and path.name != "credentials.enc":
            everything += path.read_bytes().decode("latin-1")
    assert KEY_PREFIX not in everything, "the key leaked"
    assert CODE_PREFIX not in everything, "the code leaked"
    assert "code_verifier" not in everything


async def test_sign_in_opens_the_browser_and_stores_the_key_as_an_oauth_session(
    server_command: list[str], sign_in_env: dict[str, str], data_dir: pathlib.Path, simulator: Simulator
):
    server, editor, stderr = await start(server_command, sign_in_env)
    try:
        signed = await editor.execute(
            "storyteller.providers.signIn", {"provider": "openrouter", "sessionName": "e2e-laptop"}
        )
        assert signed.get("result") == {
            "sessionId": 1,
            "sessionName": "e2e-laptop",
            "authType": "oauth",
            "providerId": 1,
            "providerAdded": True,
        }, signed
        [shown] = editor.shown
        assert shown["external"] is True
        query = urllib.parse.parse_qs(urllib.parse.urlparse(shown["uri"]).query)
        assert shown["uri"].startswith(simulator.base_url + "/openrouter/auth?")
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43
        callback = urllib.parse.urlparse(query["callback_url"][0])
        assert callback.hostname == "127.0.0.1" and len(callback.path) > 20
        status, page = await editor.browsed[0]
        assert status == 200 and "You can close this tab" in page

        listed = (await editor.execute("storyteller.providers.list", {}))["result"]
        assert [(p["provider"], p["session"], p["endpoint"]) for p in listed] == [
            ("openrouter", "e2e-laptop", simulator.endpoint("openrouter"))
        ]
        sessions = (await editor.execute("storyteller.sessions.list", {}))["result"]
        assert [(s["provider"], s["authType"], s["name"]) for s in sessions] == [
            ("openrouter", "oauth", "e2e-laptop")
        ]
        assert sessions[0]["keyHint"].startswith("••••")
        tested = await editor.execute("storyteller.providers.test", {"id": 1})
        assert tested["result"]["ok"] is True
        # The stored key is the exchanged one: the stand-in saw it on the test's request.
        seen = await simulator.requests("openrouter")
        assert all(r["headers"]["authorization"].startswith("Bearer ••••") for r in seen)
        # The listener was one-shot: the callback address is closed now.
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(query["callback_url"][0] + "?code=again", timeout=5)
        await stop(server, editor)
        assert_nothing_leaked(editor, (await stderr).decode(), data_dir)
    finally:
        await server.stop()


async def test_a_pasted_code_completes_the_sign_in_and_a_wrong_one_is_refused(
    server_command: list[str], sign_in_env: dict[str, str], data_dir: pathlib.Path
):
    server, editor, stderr = await start(server_command, sign_in_env)
    editor.browser = "none"
    try:
        # No pending sign-in: nothing to complete.
        early = await editor.execute("storyteller.providers.signInCode", {"code": "sim-code-1"})
        assert early["error"]["data"]["kind"] == "noPendingSignIn", early

        # The editor cannot open a browser: the address is shown, the author pastes a wrong code.
        sign_in = await editor.send_request(
            "workspace/executeCommand",
            {"command": "storyteller.providers.signIn", "arguments": [{"provider": "openrouter"}]},
        )
        await editor.pump_until(lambda: editor.shown)
        await editor.pump_until(
            lambda: any(
                m.get("method") == "window/showMessage" and "/openrouter/auth?" in m["params"]["message"]
                for m in editor.received
            )
        )
        url = editor.shown[0]["uri"]
        await asyncio.to_thread(code_from_redirect, url)
        pasted = await editor.execute("storyteller.providers.signInCode", {"code": "sim-code-999"})
        assert pasted.get("result") == {"accepted": True}, pasted
        refused = await editor.response(sign_in)
        assert refused["error"]["data"]["kind"] == "signInRefused", refused
        assert "OpenRouter refused the sign-in code (HTTP 403)" in refused["error"]["message"]
        assert (await editor.execute("storyteller.sessions.list", {}))["result"] == []
        assert (await editor.execute("storyteller.providers.list", {}))["result"] == []

        # Again, with the code the browser shows.
        editor.shown.clear()
        sign_in = await editor.send_request(
            "workspace/executeCommand",
            {"command": "storyteller.providers.signIn", "arguments": [{"provider": "openrouter"}]},
        )
        await editor.pump_until(lambda: editor.shown)
        code = await asyncio.to_thread(code_from_redirect, editor.shown[0]["uri"])
        pasted = await editor.execute("storyteller.providers.signInCode", {"code": code})
        assert pasted.get("result") == {"accepted": True}, pasted
        signed = await editor.response(sign_in)
        assert signed["result"]["providerAdded"] is True, signed
        assert signed["result"]["sessionName"].startswith("openrouter-")
        await stop(server, editor)
        # The code itself went through an LSP message the editor sent, never one the server wrote.
        editor.received = [m for m in editor.received if m.get("method") != "window/showDocument"]
        assert_nothing_leaked(editor, (await stderr).decode(), data_dir)
    finally:
        await server.stop()


async def test_a_declined_or_cancelled_sign_in_stores_nothing(
    server_command: list[str], sign_in_env: dict[str, str]
):
    server, editor, _ = await start(server_command, sign_in_env)
    try:
        editor.browser = "deny"
        declined = await editor.execute("storyteller.providers.signIn", {"provider": "openrouter"})
        assert declined["error"]["data"]["kind"] == "signInDenied", declined
        status, page = await editor.browsed[0]
        assert status == 200 and "did not grant access" in page

        # Cancelled while waiting for the browser: the listener closes, a later code is refused.
        editor.browser = "none"
        editor.shown.clear()
        sign_in = await editor.send_request(
            "workspace/executeCommand",
            {"command": "storyteller.providers.signIn", "arguments": [{"provider": "openrouter"}]},
        )
        await editor.pump_until(lambda: editor.shown)
        await server.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": sign_in}})
        cancelled = await editor.response(sign_in)
        assert cancelled["error"]["code"] == -32800, cancelled
        callback = urllib.parse.parse_qs(urllib.parse.urlparse(editor.shown[0]["uri"]).query)[
            "callback_url"
        ][0]
        with pytest.raises(urllib.error.URLError):
            await asyncio.to_thread(urllib.request.urlopen, callback + "?code=late", None, 5)
        late = await editor.execute("storyteller.providers.signInCode", {"code": "sim-code-1"})
        assert late["error"]["data"]["kind"] == "noPendingSignIn", late
        assert (await editor.execute("storyteller.sessions.list", {}))["result"] == []

        wrong = await editor.execute("storyteller.providers.signIn", {"provider": "openai"})
        assert wrong["error"]["code"] == -32602, wrong
        await stop(server, editor)
    finally:
        await server.stop()
