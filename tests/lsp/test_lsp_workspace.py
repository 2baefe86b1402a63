"""A real `dcopilot serve` (tiny random checkpoint, real engine) completes with the workspace: a name defined only
in another open document reaches a completion in this one, through the snippet the server ranks from that
document and the candidate retrieved from the snippet. Closing the other document takes it away again."""

import pytest

URI_LIB = "file:///ws/lib/widgets.py"
URI_MAIN = "file:///ws/app/main.py"
LIB = (
    "def frobz_total(parts):\n"
    "    return sum(part.weight for part in parts)\n"
    "\n"
    "\n"
    "def report(parts, scale):\n"
    "    total = frobz_total(parts)\n"
    "    print(total)\n"
)
MAIN = "from lib.widgets import *\n\nparts = load_parts()\nscale = 3\ntotal = frob\n"


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    import lsp_support
    from rawclient import RawClient

    env = {"DCOPILOT_MODEL_DEVICE": "cpu", "DCOPILOT_MODEL_PATH": str(tiny_checkpoint)}
    client = RawClient(lsp_support.SERVE, lsp_support.server_env(deterministic=False, **env))
    # the gate open and room for every candidate: the tiny model's text is random, the retrieved one is not
    client.initialize(options={"candidates": 8, "hypotheses": 1, "debounceMs": 0, "minScore": -100})
    client.wait_status("ready", timeout=240)
    yield client
    assert client.close() == 0


def open_doc(server, uri: str, text: str) -> None:
    doc = {"uri": uri, "languageId": "python", "version": 1, "text": text}
    server.notify("textDocument/didOpen", {"textDocument": doc})


def retype(server, version: int, header: str) -> None:
    """main.py with another first line: the server's completion cache (keyed by the text around the cursor) cannot
    answer for it, so the engine runs again with the workspace as it is now."""
    change = {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}, "text": header}
    server.notify(
        "textDocument/didChange", {"textDocument": {"uri": URI_MAIN, "version": version}, "contentChanges": [change]}
    )


def suggestions(server) -> list[str]:
    position = {"line": 4, "character": len("total = frob")}
    reply = server.request(
        "textDocument/inlineCompletion",
        {"textDocument": {"uri": URI_MAIN}, "position": position, "context": {"triggerKind": 1}},
        timeout=120,
    )
    items = reply["result"]["items"]
    return [i["insertText"] if isinstance(i["insertText"], str) else i["insertText"]["value"] for i in items]


def test_a_name_from_another_open_document_reaches_the_completion(server):
    open_doc(server, URI_MAIN, MAIN)
    alone = suggestions(server)
    assert not any("z_total" in s for s in alone)  # nothing in main.py holds the name
    open_doc(server, URI_LIB, LIB)
    retype(server, 2, "from lib import widgets\n")
    assert "z_total(parts)" in suggestions(server)
    server.notify("textDocument/didClose", {"textDocument": {"uri": URI_LIB}})
    retype(server, 3, "from lib.widgets import frob\n")  # "frob" alone: no longer line to continue
    assert not any("z_total" in s for s in suggestions(server))
