"""The shared daemon (`dcopilot serve --tcp PORT` / `--unix PATH`) as a security boundary, against the real
server process: a connection must prove it is the user who started the server, each connection is its own
session (documents, replies, settings), and no connection can end the others."""

import contextlib
import json
import os
import signal
import socket
import stat

import pytest

OPEN = "textDocument/didOpen"
INLINE = "textDocument/inlineCompletion"
SECRET = "API_KEY = 'sk-live-0123456789abcdef'"
URI = "file:///home/alice/secret.py"


def open_secret(client) -> None:
    client.notify(OPEN, {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": f"{SECRET}\npri"}})


def inline(client, line: int, character: int) -> dict:
    params = {
        "textDocument": {"uri": URI},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 1},
    }
    return client.request(INLINE, params)


def everything_received(client) -> str:
    return json.dumps(client.log)


@pytest.fixture
def daemon(tmp_path):
    import lsp_support

    d = lsp_support.Daemon(tmp_path)
    yield d
    assert d.stop() == 0


def test_the_token_file_is_readable_by_its_user_only_and_removed_at_exit(tmp_path):
    import lsp_support

    d = lsp_support.Daemon(tmp_path)
    assert stat.S_IMODE(d.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.token_file.parent.stat().st_mode) == 0o700
    assert len(d.token) >= 40  # 32 random bytes, URL-safe base64
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0
    assert not d.token_file.exists()


@pytest.mark.parametrize("options", [None, {}, {"token": ""}, {"token": "guess"}, {"token": 12345}, {"dcopilot": {}}])
def test_a_connection_without_the_token_is_refused_and_closed(daemon, options):
    client = daemon.client(authenticate=False)
    reply = client.initialize(options=options)
    assert reply["error"]["code"] == -32001 and "token" in reply["error"]["message"]
    assert client.closed_by_server()
    assert daemon.proc.poll() is None
    daemon.client().close()  # the next client with the token is served


def test_before_authenticating_nothing_is_served(daemon):
    client = daemon.client(authenticate=False)
    for method in ("dcopilot/stats", INLINE, "shutdown", "textDocument/completion"):
        reply = client.request(method, {})
        assert reply["error"]["code"] == -32002 and "data" not in reply["error"]  # ServerNotInitialized
    client.notify("exit")  # before initialize: ends this connection only
    assert client.closed_by_server()
    assert daemon.proc.poll() is None


def test_the_token_may_come_under_the_dcopilot_key(daemon):
    client = daemon.client(authenticate=False)
    assert "result" in client.initialize(options={"dcopilot": {"token": daemon.token, "candidates": 1}})
    client.close()


def test_two_clients_are_separate_sessions(daemon):
    first = daemon.client()
    first.wait_status("ready")
    open_secret(first)
    (item,) = inline(first, 1, 3)["result"]["items"][:1]
    assert item["insertText"] == "nt('hello')"

    # A newcomer that connects and says nothing takes none of the first client's replies.
    idle = socket.create_connection(("127.0.0.1", daemon.port))
    assert inline(first, 1, 3)["result"]["items"][0]["insertText"] == "nt('hello')"
    idle.settimeout(0.5)
    with pytest.raises(TimeoutError):
        idle.recv(1)  # nothing was sent to it

    # An authenticated second client asks for the first one's document every way it can.
    second = daemon.client(options={"completionItems": "always"})
    second.wait_status("ready")
    assert inline(second, 1, 3)["result"]["items"] == []
    assert inline(second, 0, 10)["result"]["items"] == []
    menu = second.request(
        "textDocument/completion", {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 7}}
    )
    assert menu["result"]["items"] == []
    whole = {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}
    edit = second.request("dcopilot/inlineEdit", {"textDocument": {"uri": URI}, "range": whole, "instruction": "x"})
    assert edit["error"]["code"] == -32602  # not open in this session
    action = second.request(
        "textDocument/codeAction", {"textDocument": {"uri": URI}, "range": whole, "context": {"diagnostics": []}}
    )
    assert action["result"] == []
    rewrite = second.request(
        "workspace/executeCommand",
        {"command": "dcopilot.rewrite", "arguments": [{"textDocument": {"uri": URI}, "range": whole}]},
    )
    assert rewrite["error"]["code"] == -32602
    assert second.request("dcopilot/stats")["result"]["requests"] == 3  # its own counters, not the first's
    assert "sk-live" not in everything_received(second)
    sent_by_second = {m["id"] for m in second.log if "result" in m or "error" in m}
    assert sent_by_second <= set(range(1, second._next + 1))  # only answers to its own requests

    # The second client shuts down and exits; the idle one vanishes: the first keeps working, its document intact.
    second.close()
    idle.close()
    assert daemon.proc.poll() is None
    assert inline(first, 1, 3)["result"]["items"][0]["insertText"] == "nt('hello')"
    ids = [m["id"] for m in first.log if "id" in m and ("result" in m or "error" in m)]
    assert len(ids) == len(set(ids))  # every request of the first client answered exactly once

    # A third client that drops the connection mid-message does not stop the server either.
    third = daemon.client()
    third.send_raw(b'Content-Length: 100\r\n\r\n{"jsonrpc"')
    third.sock.close()
    assert inline(first, 1, 3)["result"]["items"][0]["insertText"] == "nt('hello')"
    first.close()
    assert daemon.proc.poll() is None


def test_same_uri_in_two_sessions_does_not_cancel_the_other(daemon):
    """Sessions share the model; a request in one never supersedes the same URI's request in another."""
    a, b = daemon.client(), daemon.client()
    a.wait_status("ready")
    b.wait_status("ready")
    for client, text in ((a, "ret"), (b, "pri")):
        client.notify(OPEN, {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": text}})
    for _ in range(5):
        ra, rb = a.request_id(), b.request_id()
        params = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 3}, "context": {"triggerKind": 1}}
        a.send({"jsonrpc": "2.0", "id": ra, "method": INLINE, "params": params})
        b.send({"jsonrpc": "2.0", "id": rb, "method": INLINE, "params": params})
        assert a.wait(ra)["result"]["items"][0]["insertText"] == "urn total"
        assert b.wait(rb)["result"]["items"][0]["insertText"] == "nt('hello')"
    a.close()
    b.close()


def test_unix_socket_is_private_and_serves_sessions(tmp_path):
    import lsp_support

    path = tmp_path / "run" / "dcopilot.sock"
    d = lsp_support.Daemon(tmp_path, unix=path)
    try:
        assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
        first = d.client()
        first.wait_status("ready")
        open_secret(first)
        second = d.client()
        assert inline(second, 1, 3)["result"]["items"] == []
        second.close()
        assert inline(first, 1, 3)["result"]["items"][0]["insertText"] == "nt('hello')"
        first.close()
        assert d.proc.poll() is None
    finally:
        assert d.stop() == 0
    assert not path.exists()  # removed at exit


def test_a_second_server_on_a_live_socket_refuses_to_start(tmp_path):
    import subprocess

    import lsp_support

    path = tmp_path / "dcopilot.sock"
    d = lsp_support.Daemon(tmp_path, unix=path)
    try:
        other = subprocess.run(
            [*lsp_support.SERVE, "--unix", str(path)], env=lsp_support.server_env(), capture_output=True, timeout=30
        )
        assert other.returncode != 0 and b"another server" in other.stderr
        assert d.client().request("dcopilot/stats")["result"] is not None
    finally:
        d.stop()


def test_the_daemon_refuses_non_loopback_hosts():
    from dcopilot.lsp.listen import serve_tcp

    with pytest.raises(ValueError):
        serve_tcp(lambda s: None, None, 1, host="0.0.0.0")
    assert os.environ.get("DCOPILOT_TCP_HOST") is None  # there is no setting to widen it


def test_a_connection_that_never_initializes_is_closed(monkeypatch):
    """In process, with the login timeout shortened: an idle connection cannot hold a session slot forever."""
    import asyncio

    from dcopilot.lsp import listen
    from dcopilot.lsp.server import build

    import det_backend

    monkeypatch.setattr(listen, "LOGIN_TIMEOUT_S", 0.3)
    sessions = listen._Sessions(build, det_backend.make(None), token="t")

    async def main():
        tcp = await asyncio.start_server(sessions.serve, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)
        assert len(sessions.live) == 1
        closed = await asyncio.wait_for(reader.read(), timeout=5)  # EOF: the server closed it
        writer.close()
        tcp.close()
        return closed

    assert asyncio.run(main()) == b""
    assert sessions.live == {}
    sessions.shared.close()


def test_a_client_that_never_reads_its_replies_is_disconnected(monkeypatch):
    """In process, with the unread-reply cap lowered: replies cannot pile up without bound for a silent reader."""
    import asyncio
    import json as json_

    from dcopilot.lsp import listen, transport
    from dcopilot.lsp.server import build

    import det_backend

    monkeypatch.setattr(transport, "MAX_UNREAD_BYTES", 256 * 1024)
    sessions = listen._Sessions(build, det_backend.make(None), token="t")

    def frame(message: dict) -> bytes:
        body = json_.dumps(message).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    async def main():
        tcp = await asyncio.start_server(sessions.serve, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small receive window
        sock.connect(("127.0.0.1", port))
        init = {"capabilities": {}, "initializationOptions": {"token": "t"}}
        sock.sendall(frame({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init}))
        stats = b"".join(frame({"jsonrpc": "2.0", "id": i, "method": "dcopilot/stats"}) for i in range(1, 20_000))
        sock.setblocking(False)
        sent = 0
        for _ in range(3000):  # never reading: the session must end once its unread replies pass the cap
            with contextlib.suppress(BlockingIOError, ConnectionError):
                sent += sock.send(stats[sent : sent + 65536]) if sent < len(stats) else 0
            await asyncio.sleep(0.01)
            if not sessions.live:
                break
        ended = not sessions.live
        sock.close()
        tcp.close()
        return ended

    assert asyncio.run(main())
    sessions.shared.close()
