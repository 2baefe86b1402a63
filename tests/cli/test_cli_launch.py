"""`dcopilot serve` launched the way editors launch language servers: vscode-languageclient appends `--stdio`
and `--clientProcessId=PID`; transports dcopilot does not speak are refused in one line, never a traceback."""

import json
import os
import subprocess
import threading
import time

import pytest
from dcopilot.copilot.client_watch import alive, watch

from conftest import EXE


def _frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read_frame(stream) -> dict:
    length = None
    while (line := stream.readline()).strip():
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None, "the server closed its output without answering"
    return json.loads(stream.read(length))


def _initialize(proc: subprocess.Popen) -> dict:
    proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}))
    proc.stdin.flush()
    return _read_frame(proc.stdout)


def _serve(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(EXE), "serve", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def test_serve_as_vscode_languageclient_launches_it(isolated_env):
    """The exact tail vscode-languageclient 11 adds for TransportKind.stdio; exit 0 after shutdown/exit."""
    proc = _serve(isolated_env, "--device", "cpu", "--stdio", f"--clientProcessId={os.getpid()}")
    try:
        reply = _initialize(proc)
        assert reply["id"] == 1 and "inlineCompletionProvider" in reply["result"]["capabilities"], reply
        proc.stdin.write(_frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
        proc.stdin.write(_frame({"jsonrpc": "2.0", "method": "exit"}))
        proc.stdin.flush()
        assert _read_frame(proc.stdout)["id"] == 2
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode(errors="replace")
    finally:
        proc.kill()
        proc.wait()


def test_serve_exits_when_the_client_process_has_gone(isolated_env):
    """A real process stands in for the editor; killing it ends the server although its stdin stays open."""
    editor = subprocess.Popen(["sleep", "600"])
    proc = _serve(isolated_env, "--device", "cpu", "--stdio", f"--clientProcessId={editor.pid}")
    try:
        assert _initialize(proc)["id"] == 1  # up and serving while the "editor" lives
        time.sleep(2.5)  # several polls
        assert proc.poll() is None, "the server exited while its client process was alive"
        editor.kill()
        editor.wait()
        assert proc.wait(timeout=20) == 0
        assert f"client process {editor.pid} has gone" in proc.stderr.read().decode(errors="replace")
    finally:
        editor.kill()
        proc.kill()
        proc.wait()


def test_alive_counts_a_zombie_as_gone():
    child = subprocess.Popen(["sleep", "600"])
    assert alive(child.pid)
    child.kill()
    deadline = time.monotonic() + 10
    while alive(child.pid) and time.monotonic() < deadline:  # exited, not yet reaped: a zombie
        time.sleep(0.05)
    assert not alive(child.pid)
    child.wait()
    assert not alive(child.pid)


def test_watch_calls_back_once_the_process_has_gone():
    child = subprocess.Popen(["sleep", "600"])
    gone = threading.Event()
    thread = watch(child.pid, on_gone=gone.set, poll_s=0.05)
    assert not gone.wait(0.5), "called back while the process runs"
    child.kill()
    child.wait()
    assert gone.wait(10)
    thread.join(5)
    assert not thread.is_alive()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--pipe=/tmp/lsp.sock"],
            "--pipe is not supported: dcopilot speaks LSP over stdio (--stdio), --tcp PORT or --unix PATH",
        ),
        (["--tcp", "6009", "--unix", "/tmp/d.sock"], "--tcp and --unix exclude each other"),
        (["--socket=6009"], "--socket is not supported"),
        (["--node-ipc"], "--node-ipc is not supported"),
        (["--clientProcessId=abc"], "bad --clientProcessId 'abc': expected a process id"),
        (["--stdio", "--tcp", "6009"], "--stdio and --tcp exclude each other"),
    ],
)
def test_serve_refuses_other_launches_in_one_line(dcopilot, args, message):
    result = dcopilot("serve", *args)
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dcopilot serve: ") and message in lines[0], result.stderr
    assert result.stdout == ""
