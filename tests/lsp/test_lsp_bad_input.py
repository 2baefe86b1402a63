"""Bad input over a raw pipe to the real `dcopilot serve`: every request gets exactly one proper answer, the
server stays up, memory stays bounded, and no edit is ever answered against the wrong version."""

import json
import time
from pathlib import Path

import pytest

OPEN = "textDocument/didOpen"
CHANGE = "textDocument/didChange"
INLINE = "textDocument/inlineCompletion"


@pytest.fixture(scope="module")
def server(ready_server):
    return ready_server


def open_doc(server, uri: str, text: str, version: int = 1) -> None:
    server.notify(OPEN, {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}})


def inline_params(uri: str, line: int, character: int, trigger: int = 1) -> dict:
    return {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": trigger},
    }


def alive(server) -> None:
    assert "result" in server.request("dcopilot/stats", None)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_malformed_json_gets_parse_error_with_null_id(server):
    server.send_bytes(b'{"jsonrpc": "2.0", "id": 1, "method": ')
    reply = server.wait(None)
    assert reply["error"]["code"] == -32700 and reply["id"] is None
    alive(server)


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b'"text"', b"42", b'{"id": "bad-5"}', b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "x"}']
)
def test_not_a_request_gets_invalid_request(server, body):
    server.responses.pop(None, None)
    server.send_bytes(body)
    reply = server.wait("bad-5") if b"bad-5" in body else server.wait(None)
    assert reply["error"]["code"] == -32600
    alive(server)


def test_a_frame_without_headers_does_not_lose_the_next_message(server):
    server.proc.stdin.write(b'{"jsonrpc": "2.0", "id": "lost", "method": "dcopilot/stats"}')  # no header at all
    server.proc.stdin.flush()
    alive(server)  # its header follows the garbage on the same line; the reader resynchronises there


def test_non_utf8_body_is_decoded_with_replacement(server):
    uri = "file:///work/bad_latin1.py"
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": OPEN,
            "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "s = 'caf@'\nret"}},
        }
    )
    server.send_bytes(body.encode().replace(b"@", b"\xe9"))  # latin-1 é: invalid UTF-8
    (item,) = server.request(INLINE, inline_params(uri, 1, 3))["result"]["items"]
    assert item["insertText"] == "urn total" and item["range"]["start"] == {"line": 1, "character": 3}


def test_unknown_methods(server):
    assert server.request("dcopilot/noSuchThing", {})["error"]["code"] == -32601
    server.notify("$/noSuchNotification", {"x": 1})  # ignored, as LSP says for $/ notifications
    server.notify("custom/unknownNotification", {})
    alive(server)


@pytest.mark.parametrize(
    "method, params",
    [
        (INLINE, {"textDocument": {"uri": "file:///x.py"}}),  # no position
        (
            INLINE,
            {
                "textDocument": {"uri": "file:///x.py"},
                "position": {"line": -1, "character": 0},
                "context": {"triggerKind": 1},
            },
        ),
        (
            INLINE,
            {
                "textDocument": {"uri": "file:///x.py"},
                "position": {"line": "one", "character": 0},
                "context": {"triggerKind": 1},
            },
        ),
        (INLINE, None),
        ("textDocument/completion", {"position": {"line": 0, "character": 0}}),
        ("dcopilot/inlineEdit", {"textDocument": {"uri": "file:///x.py"}}),
        ("dcopilot/inlineEdit", {"textDocument": {"uri": 3}, "range": {}}),
        ("workspace/executeCommand", {"command": "dcopilot.rewrite", "arguments": ["nonsense"]}),
        ("workspace/executeCommand", {"command": "no.such.command"}),
        ("workspace/executeCommand", {"command": "dcopilot.acceptedCompletion"}),  # no arguments
        ("codeAction/resolve", {"title": "Rewrite with dcopilot"}),  # no data
        ("codeAction/resolve", {"title": "Rewrite with dcopilot", "data": [1]}),
        ("dcopilot/inlineEdit", [1, 2]),
    ],
)
def test_invalid_params_get_invalid_params(server, method, params):
    assert server.request(method, params)["error"]["code"] == -32602
    alive(server)


def test_bad_notifications_are_dropped_and_the_server_lives(server):
    server.notify(
        CHANGE,
        {
            "textDocument": {"uri": "file:///never-opened.py", "version": 2},
            "contentChanges": [
                {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "x"}
            ],
        },
    )
    server.notify(CHANGE, {"textDocument": {"uri": 5}})
    server.notify(OPEN, {"textDocument": {"uri": "file:///no-text.py"}})
    server.notify("dcopilot/didAcceptCompletion", {"acceptedLength": "all"})
    uri = "file:///work/bad_accept.py"
    open_doc(server, uri, "ret")
    (item,) = server.request(INLINE, inline_params(uri, 0, 3))["result"]["items"]
    sid = item["command"]["arguments"][0]["id"]
    before = server.request("dcopilot/stats", None)["result"]["acceptedChars"]
    for length in (-5, 2**40, None):  # converted from position units: clamped to the suggestion
        server.notify("dcopilot/didAcceptCompletion", {"id": sid, "acceptedLength": length})
    server.notify("dcopilot/didShowCompletion", {"id": 5})
    after = server.request("dcopilot/stats", None)["result"]["acceptedChars"]
    assert after - before == 2 * len(item["insertText"])
    alive(server)


def test_requests_for_unknown_or_closed_documents(server):
    uri = "file:///work/closed.py"
    open_doc(server, uri, "ret")
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert server.request(INLINE, inline_params(uri, 0, 3))["result"]["items"] == []
    assert server.request(INLINE, inline_params("file:///never.py", 0, 0))["result"]["items"] == []
    edit = {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 3}},
    }
    assert server.request("dcopilot/inlineEdit", edit)["error"]["code"] == -32602


def test_menu_items_for_a_client_without_inline_completion(server):
    uri = "file:///work/menu.py"
    open_doc(server, uri, "pri")
    params = {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 3}}
    (item,) = server.request("textDocument/completion", params)["result"]["items"]
    assert item["textEdit"]["newText"] == "print('hello')" and item["labelDetails"]["description"] == "dcopilot AI"
    assert item["textEdit"]["range"]["start"] == {"line": 0, "character": 0}


def test_positions_past_end_of_line_and_document(server):
    uri = "file:///work/past_end.py"
    open_doc(server, uri, "ret\r\n\tx = 1\r\n")
    (item,) = server.request(INLINE, inline_params(uri, 0, 10_000))["result"]["items"]
    assert item["range"]["start"] == {"line": 0, "character": 3} and item["insertText"] == "urn total"
    (item,) = server.request(INLINE, inline_params(uri, 2**31 - 1, 2**31 - 1))["result"]["items"]
    assert item["range"]["start"] == {"line": 2, "character": 0}


def test_stale_and_out_of_order_changes_are_ignored(server):
    uri = "file:///work/stale.py"
    open_doc(server, uri, "ret", version=5)
    change = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 3}}, "text": "zzz"}
    server.notify(CHANGE, {"textDocument": {"uri": uri, "version": 4}, "contentChanges": [change]})  # older: ignored
    (item,) = server.request(INLINE, inline_params(uri, 0, 3))["result"]["items"]
    assert item["insertText"] == "urn total"
    server.notify(
        CHANGE, {"textDocument": {"uri": "file:///work/adopted.py", "version": 3}, "contentChanges": [{"text": "pri"}]}
    )
    (item,) = server.request(INLINE, inline_params("file:///work/adopted.py", 0, 3))["result"]["items"]
    assert item["insertText"] == "nt('hello')"  # a full-text change needs no history: the document is adopted


def test_binary_content_and_lone_surrogates(server):
    uri = "file:///work/binary.bin"
    open_doc(server, uri, "\x00\x01\x02ELF\x00" * 100 + "ret")
    assert server.request(INLINE, inline_params(uri, 0, 703))["result"]["items"] == []  # binary: nothing offered
    uri = "file:///work/surrogate.py"
    server.send_bytes(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "method": OPEN,
                "params": {
                    "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "s = '\\ud800'\nret"}
                },
            }
        )
        .encode()
        .replace(b"\\\\ud800", b"\\ud800")
    )
    (item,) = server.request(INLINE, inline_params(uri, 1, 3))["result"]["items"]
    assert item["insertText"] == "urn total"


def test_ten_megabyte_document(server):
    uri = "file:///work/huge.py"
    line = "value = compute(x, y)  # 数据 😀\n"
    text = line * (10 * 1024 * 1024 // len(line.encode()))
    open_doc(server, uri, text + "ret")
    last = text.count("\n")
    (item,) = server.request(INLINE, inline_params(uri, last, 3), timeout=60)["result"]["items"]
    assert item["insertText"] == "urn total" and item["range"]["start"] == {"line": last, "character": 3}
    for version in range(2, 12):  # incremental edits in the middle of the huge document
        pos = {"line": last // 2, "character": 0}
        server.notify(
            CHANGE,
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": pos, "end": pos}, "text": "pri"}],
            },
        )
    (item,) = server.request(INLINE, inline_params(uri, last // 2, 30))["result"]["items"]
    assert item["insertText"] == "nt('hello')"
    server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    alive(server)


def test_request_storm_every_request_answered_once_and_bounded(server):
    uri = "file:///work/storm.py"
    open_doc(server, uri, "")
    sent = []
    text = ""
    for version in range(2, 1002):
        ch = "abcdefgh "[version % 9]
        server.notify(
            CHANGE,
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [
                    {
                        "range": {
                            "start": {"line": 0, "character": len(text)},
                            "end": {"line": 0, "character": len(text)},
                        },
                        "text": ch,
                    }
                ],
            },
        )
        text += ch
        rid = server.request_id()
        server.send(
            {"jsonrpc": "2.0", "id": rid, "method": INLINE, "params": inline_params(uri, 0, len(text), trigger=2)}
        )
        sent.append(rid)
    for rid in sent:
        server.wait(rid, timeout=120)
    replies = [server.responses[rid] for rid in sent]
    assert all(len(r) == 1 for r in replies)  # exactly one answer each
    codes = [r[0].get("error", {}).get("code") for r in replies]
    assert set(codes) <= {None, -32800}
    assert codes[-1] is None  # the newest request wins
    (item,) = replies[-1][0]["result"]["items"]
    assert item["range"]["start"] == {"line": 0, "character": len(text)}  # against the final version
    stats = server.request("dcopilot/stats", None)["result"]
    assert stats["cancelled"] >= codes.count(-32800) > 0
    assert rss_mb(server.proc.pid) < 300  # about 50 MB here after the storm and the 10 MB document


def test_after_shutdown_requests_are_refused(server):
    # the fixture sends shutdown at teardown; here a second server checks the refusal itself
    import lsp_support
    from rawclient import RawClient

    other = RawClient(lsp_support.SERVE, lsp_support.server_env())
    try:
        other.initialize()
        assert other.request("shutdown", None)["result"] is None
        assert other.request(INLINE, inline_params("file:///x.py", 0, 0))["error"]["code"] == -32600
        other.notify("exit")
        assert other.proc.wait(timeout=10) == 0
    finally:
        if other.proc.poll() is None:
            other.proc.kill()


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                found.append(local.rsplit(":", 1)[0])
    return found


def test_tcp_listens_on_loopback_only(tmp_path):
    import lsp_support

    daemon = lsp_support.Daemon(tmp_path)
    try:
        assert _listening(daemon.port) == ["0100007F"]  # 127.0.0.1, nothing else
        client = daemon.client()
        assert client.request("dcopilot/stats")["result"]["requests"] == 0
        client.sock.close()  # the client leaves without a word: its session ends, the daemon keeps listening
        time.sleep(0.2)
        assert daemon.proc.poll() is None and _listening(daemon.port) == ["0100007F"]
    finally:
        assert daemon.stop() == 0  # SIGTERM: a clean exit


@pytest.mark.parametrize("trace", [False, True])
def test_document_text_reaches_the_log_only_when_tracing(tmp_path, trace):
    """Debug logging, good and bad messages: the log holds document text only with `trace = true`."""
    import lsp_support
    from rawclient import RawClient

    secret = "SECRET_Tok3n_in_the_document"
    with open(tmp_path / "stderr.log", "wb") as log:
        env = lsp_support.server_env(DCOPILOT_SERVER_LOG_LEVEL="debug", DCOPILOT_SERVER_TRACE=str(trace).lower())
        client = RawClient(lsp_support.SERVE, env, stderr=log)
        client.initialize()
        client.wait_status("ready")
        uri = "file:///work/secret.py"
        open_doc(client, uri, f"{secret} = 1\npri")
        client.request(INLINE, inline_params(uri, 1, 3))
        whole_line = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": len(secret)}}
        edit = client.request(
            "dcopilot/inlineEdit", {"textDocument": {"uri": uri}, "range": whole_line, "instruction": "x"}
        )
        assert secret in edit["result"]["edits"][0]["newText"]  # the reply carries document text; the log must not
        client.notify(OPEN, {"textDocument": {"uri": uri, "text": secret}})  # invalid: no version, no languageId
        client.request(INLINE, {"textDocument": {"uri": uri}, "text": secret})  # invalid params
        client.send_bytes(b'{"broken": "' + secret.encode())  # malformed JSON
        client.wait(None)
        assert client.close() == 0
    logged = (tmp_path / "stderr.log").read_text(errors="replace")
    assert "DEBUG" in logged or "INFO" in logged  # the log was really written at a verbose level
    assert (secret in logged) == trace


def test_a_stale_edit_is_logged_in_one_line_not_as_an_error(tmp_path):
    """ContentModified is an expected answer (the user typed on): no ERROR line, no traceback in the log."""
    import lsp_support
    from rawclient import RawClient

    with open(tmp_path / "stderr.log", "wb") as log:
        client = RawClient(lsp_support.SERVE, lsp_support.server_env(DCOPILOT_SERVER_LOG_LEVEL="debug"), stderr=log)
        client.initialize()
        client.wait_status("ready")
        uri = "file:///work/stale_log.py"
        open_doc(client, uri, "foo = 1\n", version=3)
        whole_line = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 7}}
        reply = client.request("dcopilot/inlineEdit", {"textDocument": {"uri": uri, "version": 2}, "range": whole_line})
        assert reply["error"]["code"] == -32801
        assert client.close() == 0
    logged = (tmp_path / "stderr.log").read_text(errors="replace")
    assert "Traceback" not in logged and " ERROR " not in logged, logged[-3000:]
    (line,) = [x for x in logged.splitlines() if "-32801" in x]
    assert " DEBUG " in line and "version" in line
