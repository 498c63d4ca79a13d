"""What a well-behaved client never sends, written as raw bytes to the server's stdin: the
server answers with the JSON-RPC error and keeps serving; exit codes follow the LSP rules."""

from __future__ import annotations

from conftest import RawServer

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"capabilities": {}},
}


async def handshake(server: RawServer) -> None:
    await server.send(INITIALIZE)
    response = await server.read_response(1)
    assert "result" in response
    await server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})


async def test_a_request_before_initialize_gets_server_not_initialized(raw_server: RawServer):
    await raw_server.send(
        {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "textDocument/completion",
            "params": {
                "textDocument": {"uri": "file:///a.md"},
                "position": {"line": 0, "character": 0},
            },
        }
    )
    response = await raw_server.read_response(7)
    assert response["error"]["code"] == -32002
    # The session is still usable.
    await handshake(raw_server)


async def test_malformed_json_gets_a_parse_error_and_the_session_goes_on(raw_server: RawServer):
    await handshake(raw_server)
    body = b'{"jsonrpc": "2.0", "id": 2, "method": '
    await raw_server.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    response = await raw_server.read_response(None)
    assert response["error"]["code"] == -32700
    await raw_server.send({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
    assert (await raw_server.read_response(3))["result"] is None
    await raw_server.send({"jsonrpc": "2.0", "method": "exit"})
    assert await raw_server.wait() == 0


async def test_a_message_that_is_not_json_rpc_is_an_invalid_request(raw_server: RawServer):
    await handshake(raw_server)
    await raw_server.send({"jsonrpc": "2.0", "id": 4})
    assert (await raw_server.read_response(4))["error"]["code"] == -32600


async def test_shutdown_with_null_params_then_exit_is_clean(raw_server: RawServer):
    await handshake(raw_server)
    await raw_server.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
    assert "result" in await raw_server.read_response(2)
    await raw_server.send({"jsonrpc": "2.0", "id": 3, "method": "textDocument/completion"})
    assert (await raw_server.read_response(3))["error"]["code"] == -32600
    await raw_server.send({"jsonrpc": "2.0", "method": "exit", "params": None})
    assert await raw_server.wait() == 0


async def test_exit_without_shutdown_exits_with_code_1(raw_server: RawServer):
    await handshake(raw_server)
    await raw_server.send({"jsonrpc": "2.0", "method": "exit"})
    assert await raw_server.wait() == 1


async def test_a_late_answer_to_an_abandoned_server_request_does_not_end_the_session(
    server_command, provider_env, configured_providers, simulator
):
    """The editor cancels a command while the server waits on its confirmation dialog, then
    answers the dialog anyway: the answer is discarded and the session goes on (tower-lsp 0.20
    would panic on it and end the session)."""
    await configured_providers([("openai", simulator.endpoint("openai"))])
    server = await RawServer.start(server_command, provider_env)
    try:
        await server.send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"capabilities": {"window": {"showMessage": {"messageActionItem": {}}}}},
            }
        )
        await server.read_response(1)
        await server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        await server.send(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "workspace/executeCommand",
                "params": {"command": "storyteller.providers.remove", "arguments": [{"id": 1}]},
            }
        )
        while True:
            message = await server.read()
            if message.get("method") == "window/showMessageRequest":
                break
        assert message["params"]["message"].startswith("Remove ")
        await server.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 2}})
        cancelled = await server.read_response(2)
        assert cancelled["error"]["code"] == -32800
        # The dialog is answered after its waiter is gone.
        await server.send({"jsonrpc": "2.0", "id": message["id"], "result": {"title": "Remove"}})
        await server.send(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "workspace/executeCommand",
                "params": {"command": "storyteller.providers.list", "arguments": [{}]},
            }
        )
        listed = await server.read_response(3)
        assert [p["provider"] for p in listed["result"]] == ["openai"], "nothing was removed"
        await server.send({"jsonrpc": "2.0", "id": 4, "method": "shutdown"})
        await server.read_response(4)
        await server.send({"jsonrpc": "2.0", "method": "exit"})
        assert await server.wait() == 0
    finally:
        await server.stop()
