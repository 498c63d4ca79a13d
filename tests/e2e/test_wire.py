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
