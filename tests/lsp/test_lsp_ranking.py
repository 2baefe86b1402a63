"""When the real `dcopilot serve` ranks workspace snippets: once for the request of a burst of keystrokes that
survives the debounce, never for the superseded ones nor for one answered from the cache, and only from text of
the version the request was made for. Counted from the server's debug log, one "N snippets from" line per
ranking (the deterministic backend; ranking itself is tested as tables in tests/infill/test_context.py)."""

import re
import time

INLINE = "textDocument/inlineCompletion"
HELPERS = "file:///ws/helpers.py"
MAIN = "file:///ws/main.py"
HELPERS_TEXT = "def frobnicate_widget(items, scale):\n    return [item * scale for item in items]\n"
MAIN_TEXT = "items = load()\nscale = 2\nresult = frob"
FAR = "".join(f"line{i} = {i}\n" for i in range(100))  # the cursor ends up far below line 3


def open_doc(client, uri: str, text: str) -> None:
    client.notify(
        "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}
    )


def insert(client, uri: str, version: int, line: int, character: int, text: str) -> None:
    at = {"line": line, "character": character}
    change = {"range": {"start": at, "end": at}, "text": text}
    client.notify(
        "textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}
    )


def ask(client, uri: str, line: int, character: int, trigger: int = 2) -> int:
    """Send an inline completion request without waiting (trigger 2: automatic, debounced); its id."""
    rid = client.request_id()
    params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
    client.send(
        {"jsonrpc": "2.0", "id": rid, "method": INLINE, "params": {**params, "context": {"triggerKind": trigger}}}
    )
    return rid


def rankings(log_path) -> list[str]:
    return re.findall(r" (c\d+) (\d+ snippets from .*)", log_path.read_text(errors="replace"))


def test_snippets_are_ranked_once_per_burst_and_never_for_a_cached_answer(tmp_path):
    import lsp_support
    from rawclient import RawClient

    log_path = tmp_path / "stderr.log"
    with open(log_path, "wb") as log:
        client = RawClient(lsp_support.SERVE, lsp_support.server_env(DCOPILOT_SERVER_LOG_LEVEL="debug"), stderr=log)
        client.initialize(options={"debounceMs": 300})
        client.wait_status("ready")
        open_doc(client, HELPERS, HELPERS_TEXT)
        open_doc(client, MAIN, MAIN_TEXT)

        # six keystrokes as fast as an editor sends them: five superseded while they wait, one answered
        column = len("result = frob")
        ids = []
        for version, char in enumerate("nicate", start=2):
            insert(client, MAIN, version, 2, column, char)
            column += 1
            ids.append(ask(client, MAIN, 2, column))
        replies = [client.wait(rid) for rid in ids]
        assert [r.get("error", {}).get("code") for r in replies[:-1]] == [-32800] * 5
        assert replies[-1]["result"]["items"], replies[-1]

        # the same context again: the cache answers it, nothing is ranked
        assert client.request(INLINE, {**_params(MAIN, 2, column), "context": {"triggerKind": 2}})["result"]["items"]
        assert client.close() == 0

    ranked = rankings(log_path)
    assert [what for _, what in ranked] == ["1 snippets from helpers.py"], ranked
    logged = log_path.read_text(errors="replace")
    assert f"{ranked[0][0]} served from" not in logged and "served from the cache" in logged


def test_a_request_whose_document_moved_on_during_the_debounce_ranks_no_region_of_the_newer_text(tmp_path):
    """The only snippet candidate is an edited region of the cursor's own document. It changes while the
    request waits: the request, now stale, is ranked without the document's edited regions (its result is not
    shown; the existing stale handling drops it), and the next request, for the current text, has them."""
    import lsp_support
    from rawclient import RawClient

    log_path = tmp_path / "stderr.log"
    with open(log_path, "wb") as log:
        client = RawClient(lsp_support.SERVE, lsp_support.server_env(DCOPILOT_SERVER_LOG_LEVEL="debug"), stderr=log)
        client.initialize(options={"debounceMs": 500})
        client.wait_status("ready")
        open_doc(client, MAIN, FAR + MAIN_TEXT)
        insert(client, MAIN, 2, 3, 0, "scaled = frobnicate_items(items, scale)\n")
        last = FAR.count("\n") + 3
        rid = ask(client, MAIN, last, len("result = frob"))
        time.sleep(0.2)  # the request has taken its snapshot (v2) and waits out its debounce (500 ms)
        insert(client, MAIN, 3, 5, 0, "# ")  # the document moves on while the request waits
        assert client.wait(rid)["result"]["items"] == []  # stale: dropped, not shown
        fresh = client.request(INLINE, {**_params(MAIN, last, len("result = frob")), "context": {"triggerKind": 1}})
        assert "result" in fresh
        assert client.close() == 0

    assert [what for _, what in rankings(log_path)] == ["0 snippets from -", "1 snippets from main.py"]


def _params(uri: str, line: int, character: int) -> dict:
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
