"""Standard input and output as editors hand them over: anonymous pipes (Helix, most clients),
socket pairs (libuv: VS Code, Neovim), stdout and stderr on one pipe (a wrapper's `2>&1`), and a
regular file as input (a recorded opening). The server reads and writes pipes and sockets on its
reactor and everything else through Tokio's blocking readers (src/lsp/stdio.rs); each way must
serve a whole session and end with the LSP exit code."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import select
import socket
import subprocess

PATIENCE = 30
TEXT = "# One\n\nThe lamp was lit. 灯台 🌊\n"


def message(payload: dict) -> bytes:
    body = json.dumps(payload).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


OPEN = {
    "jsonrpc": "2.0",
    "method": "textDocument/didOpen",
    "params": {
        "textDocument": {
            "uri": "file:///stdio/chapter.md",
            "languageId": "markdown",
            "version": 1,
            "text": TEXT,
        }
    },
}


class Wire:
    """An LSP client on two raw descriptors; bytes outside frames (log lines on a shared pipe)
    are skipped."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.buffer = b""

    def send(self, payload: dict) -> None:
        data = message(payload)
        while data:
            data = data[os.write(self.write_fd, data) :]

    def _fill(self) -> None:
        ready, _, _ = select.select([self.read_fd], [], [], PATIENCE)
        assert ready, "no answer in time"
        chunk = os.read(self.read_fd, 65536)
        if not chunk:
            raise EOFError("the server closed its output")
        self.buffer += chunk

    def receive(self) -> dict:
        while True:
            start = self.buffer.find(b"Content-Length:")
            if start != -1 and (end := self.buffer.find(b"\r\n\r\n", start)) != -1:
                length = int(self.buffer[start:end].split(b":")[1])
                if len(self.buffer) >= end + 4 + length:
                    body = self.buffer[end + 4 : end + 4 + length]
                    self.buffer = self.buffer[end + 4 + length :]
                    return json.loads(body)
            self._fill()

    def answer(self, id: int) -> dict:
        while True:
            received = self.receive()
            if received.get("id") == id and "method" not in received:
                return received


def nonblocking(pid: int, fd: int) -> bool:
    """Whether the server's descriptor `fd` is in non-blocking mode (read on its reactor)."""
    for line in pathlib.Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return bool(int(line.split()[1], 8) & os.O_NONBLOCK)
    raise AssertionError("no flags in fdinfo")


def whole_session(wire: Wire, pid: int, reactor_output: bool = True) -> None:
    """initialize, a document, its state, shutdown, exit: as an editor does it, one answer
    before the next step."""
    wire.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
    assert "capabilities" in wire.answer(1)["result"]
    assert nonblocking(pid, 0), "standard input is read on the reactor"
    assert nonblocking(pid, 1) == reactor_output
    wire.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    wire.send(OPEN)
    wire.send(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "storyteller/documentState",
            "params": {"uri": "file:///stdio/chapter.md"},
        }
    )
    state = wire.answer(2)["result"]
    assert state["version"] == 1, state
    assert state["sha256"] == hashlib.sha256(TEXT.encode("utf-8")).hexdigest()
    wire.send({"jsonrpc": "2.0", "id": 3, "method": "shutdown"})
    assert wire.answer(3)["result"] is None
    wire.send({"jsonrpc": "2.0", "method": "exit"})


def test_pipes(server_command: list[str], server_env: dict[str, str]):
    process = subprocess.Popen(
        server_command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env,
    )
    try:
        whole_session(Wire(process.stdin.fileno(), process.stdout.fileno()), process.pid)
        assert process.wait(timeout=PATIENCE) == 0
    finally:
        process.kill()
        process.wait()
        process.stdin.close()
        process.stdout.close()


def test_socket_pairs_as_libuv_gives_them(server_command: list[str], server_env: dict[str, str]):
    ours_in, theirs_in = socket.socketpair()
    ours_out, theirs_out = socket.socketpair()
    with ours_in, ours_out:
        process = subprocess.Popen(
            server_command,
            stdin=theirs_in.fileno(),
            stdout=theirs_out.fileno(),
            stderr=subprocess.DEVNULL,
            env=server_env,
        )
        theirs_in.close()
        theirs_out.close()
        try:
            whole_session(Wire(ours_in.fileno(), ours_out.fileno()), process.pid)
            assert process.wait(timeout=PATIENCE) == 0
        finally:
            process.kill()
            process.wait()


def test_stdout_and_stderr_on_one_pipe(server_command: list[str], server_env: dict[str, str]):
    # Debug log lines share the pipe with the LSP messages, which must stay whole between them.
    process = subprocess.Popen(
        server_command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**server_env, "STORYTELLER_LOG": "debug"},
    )
    try:
        # Standard output stays blocking: making it non-blocking would do the same to stderr.
        whole_session(
            Wire(process.stdin.fileno(), process.stdout.fileno()), process.pid, reactor_output=False
        )
        assert process.wait(timeout=PATIENCE) == 0
    finally:
        process.kill()
        process.wait()
        process.stdin.close()
        process.stdout.close()


def test_a_file_as_input(
    server_command: list[str], server_env: dict[str, str], tmp_path: pathlib.Path
):
    # A recorded opening, read through Tokio's blocking reader; the input then ends without
    # `shutdown`, which is exit code 1 by the LSP rules.
    recorded = tmp_path / "session.lsp"
    recorded.write_bytes(
        message({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
    )
    with recorded.open("rb") as source:
        done = subprocess.run(
            server_command, stdin=source, capture_output=True, env=server_env, timeout=PATIENCE
        )
    wire = Wire(-1, -1)
    wire.buffer = done.stdout
    assert "capabilities" in wire.answer(1)["result"]
    assert done.returncode == 1
