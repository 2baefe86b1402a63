"""The real `dcopilot serve` log: one debug line per step of a request (so "why did no suggestion arrive" can be
answered from it) without document text, and a quiet, clean exit when the client goes away mid-request."""

import json
import subprocess
import time

import pytest

INLINE = "textDocument/inlineCompletion"
SECRET = "SECRET_Tok3n_in_the_document"


def open_doc(client, uri: str, text: str, version: int = 1) -> None:
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}},
    )


def inline(uri: str, line: int, character: int, trigger: int = 1) -> dict:
    return {
        "textDocument": {"uri": uri},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": trigger},
    }


def insert(client, uri: str, version: int, line: int, character: int, text: str) -> None:
    at = {"line": line, "character": character}
    client.notify(
        "textDocument/didChange",
        {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": text}],
        },
    )


def test_debug_log_follows_every_request_without_document_text(tmp_path):
    import lsp_support
    from rawclient import RawClient

    with open(tmp_path / "stderr.log", "wb") as log:
        env = lsp_support.server_env(DCOPILOT_SERVER_LOG_LEVEL="debug", DCOPILOT_SERVER_TRACE="false")
        client = RawClient(lsp_support.SERVE, env, stderr=log)
        client.initialize(options={"debounceMs": 30})
        client.wait_status("ready")
        uri = "file:///work/log_me.py"
        open_doc(client, uri, f"{SECRET} = 1\npri")

        # invoked: engine run; then typing into the suggestion: the typed-through cache
        assert client.request(INLINE, inline(uri, 1, 3))["result"]["items"]
        insert(client, uri, 2, 1, 3, "nt")
        assert client.request(INLINE, inline(uri, 1, 5, trigger=2))["result"]["items"]

        # automatic: debounced; the older one is superseded while it waits
        first, second = client.request_id(), client.request_id()
        client.send({"jsonrpc": "2.0", "id": first, "method": INLINE, "params": inline(uri, 0, 3, trigger=2)})
        client.send({"jsonrpc": "2.0", "id": second, "method": INLINE, "params": inline(uri, 0, 4, trigger=2)})
        assert client.wait(first)["error"]["code"] == -32800
        assert "result" in client.wait(second)

        # cancelled while the engine runs: it stops mid-run
        slow = "file:///work/slow_log.py"
        open_doc(client, slow, f"#SLOW {SECRET}\npri")
        rid = client.request_id()
        client.send({"jsonrpc": "2.0", "id": rid, "method": INLINE, "params": inline(slow, 1, 3)})
        time.sleep(0.3)
        client.notify("$/cancelRequest", {"id": rid})
        assert client.wait(rid)["error"]["code"] == -32800

        # the document changes while the engine runs: the result is dropped
        rid = client.request_id()
        client.send({"jsonrpc": "2.0", "id": rid, "method": INLINE, "params": inline(slow, 1, 3)})
        time.sleep(0.3)
        insert(client, slow, 2, 0, 0, "# ")
        assert client.wait(rid)["result"]["items"] == []

        # nothing to ask the model: a document that is not open
        assert client.request(INLINE, inline("file:///work/never_opened.py", 0, 0))["result"]["items"] == []

        # edits: one answered, one refused for a stale version
        line0 = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": len(SECRET)}}
        edit = client.request("dcopilot/inlineEdit", {"textDocument": {"uri": uri}, "range": line0, "instruction": "x"})
        assert SECRET in edit["result"]["edits"][0]["newText"]  # the reply carries document text; the log must not
        stale = client.request("dcopilot/inlineEdit", {"textDocument": {"uri": uri, "version": 1}, "range": line0})
        assert stale["error"]["code"] == -32801
        assert client.close() == 0

    logged = (tmp_path / "stderr.log").read_text(errors="replace")
    ours = [x for x in logged.splitlines() if " dcopilot." in x]
    expected = {
        "request received": " inline completion (Invoked) file:///work/log_me.py v1 at 1:3",
        "automatic trigger": "inline completion (Automatic) file:///work/log_me.py v2 at 1:5",
        "engine run finished": "engine run for file:///work/log_me.py finished in",
        "answered from the model": "answered: 3 from model -> 3 offered",
        "typed-through cache": "served from the typed-through cache",
        "debounce": "debounce 30 ms",
        "superseded in debounce": "superseded or cancelled during the debounce wait",
        "cancelled in the engine": "superseded or cancelled while queued or running in the engine",
        "engine stopped mid-run": "engine stopped mid-run for file:///work/slow_log.py",
        "stale result": "result dropped: computed for v1, the document is now at v2",
        "empty result": "empty: document not open",
        "edit received": "edit file:///work/log_me.py v2 0:0-0:28, instruction of 1 chars",
        "edit answered": "1 edits for 28 selected chars",
        "edit refused": "answered with error -32801",
    }
    missing = [what for what, fragment in expected.items() if not any(fragment in x for x in ours)]
    assert not missing, (missing, "\n".join(ours))
    for fragment in expected.values():
        line = next(x for x in ours if fragment in x)
        assert " DEBUG " in line, line
    assert SECRET not in logged
    assert "Traceback" not in logged and " ERROR " not in logged, logged[-3000:]


@pytest.mark.parametrize("order", ["both at once", "output first"])
def test_client_that_quits_mid_request_leaves_quietly(tmp_path, order):
    """Neovim quitting closes the pipes while a request runs: its late reply is dropped with a debug line, not
    an ERROR and a traceback, and the process exits 0."""
    import lsp_support

    def frame(message: dict) -> bytes:
        body = json.dumps(message).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    env = lsp_support.server_env(DCOPILOT_SERVER_LOG_LEVEL="debug")
    with open(tmp_path / "stderr.log", "wb") as log:
        proc = subprocess.Popen(lsp_support.SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        try:
            send = proc.stdin
            send.write(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}))
            send.flush()
            assert proc.stdout.read1(16)  # the initialize reply has begun: the server is up
            send.write(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
            doc = {"uri": "file:///work/quit.py", "languageId": "python", "version": 1, "text": "#SLOW\npri"}
            send.write(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": doc}}))
            send.flush()
            time.sleep(1.0)  # the deterministic model loads in ~0.2 s
            params = inline(doc["uri"], 1, 3)
            send.write(frame({"jsonrpc": "2.0", "id": 2, "method": INLINE, "params": params}))
            send.flush()
            time.sleep(0.3)  # the request is in the engine (#SLOW: about 2 s)
            proc.stdout.close()
            if order == "output first":
                # the reply hits a broken pipe while the input is still open
                send.write(frame({"jsonrpc": "2.0", "id": 3, "method": "dcopilot/stats", "params": None}))
                send.flush()
                time.sleep(0.5)
            send.close()
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logged = (tmp_path / "stderr.log").read_text(errors="replace")
    assert "Traceback" not in logged and " ERROR " not in logged and "Exception" not in logged, logged[-3000:]
    assert "client gone" in logged and "dropped a late message" in logged, logged[-3000:]
