"""Completions at every column of unicode, tab and CRLF lines, in each negotiated position encoding.

The oracle is independent of lsp/encoding.py: it measures line prefixes with Python's codecs and finds the
column a position clamps to by brute force. The deterministic backend completes by the word before the
cursor, so the suggestion text also proves the cursor offset was found correctly.
"""

import pytest

from det_backend import DEFAULT, WORDS

LINES = ["x😀", "数据", "\tif a:\t# tab", "mixé😀z 数", "plain ascii"]
TEXT_LF = "\n".join(LINES) + "\n"
TEXT_CRLF = "\r\n".join(LINES) + "\r\n"


def units(s: str, encoding: str) -> int:
    if encoding == "utf-16":
        return len(s.encode("utf-16-le")) // 2
    if encoding == "utf-8":
        return len(s.encode("utf-8"))
    return len(s)


def expected(line: str, character: int, encoding: str) -> tuple[int, str]:
    """(clamped column, prefix before it): the last character boundary at or before `character`."""
    best = 0
    for i in range(len(line) + 1):
        if units(line[:i], encoding) <= character:
            best = i
    return units(line[:best], encoding), line[:best]


@pytest.fixture(scope="module", params=["utf-16", "utf-8", "utf-32"])
def server(request):
    import lsp_support
    from rawclient import RawClient

    client = RawClient(lsp_support.SERVE, lsp_support.server_env())
    encodings = [request.param] if request.param != "utf-16" else None  # utf-16: a client that offers nothing
    reply = client.initialize(encodings=encodings, options={"candidates": 1})
    assert reply["result"]["capabilities"]["positionEncoding"] == request.param
    client.wait_status("ready")
    client.encoding = request.param
    yield client
    client.close()


def complete(client, uri: str, line: int, character: int) -> list[dict]:
    reply = client.request(
        "textDocument/inlineCompletion",
        {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 1},
        },
    )
    return reply["result"]["items"]


@pytest.mark.parametrize("text", [TEXT_LF, TEXT_CRLF], ids=["lf", "crlf"])
def test_every_column_maps_to_the_right_offset(server, text):
    uri = f"file:///work/positions_{server.encoding}_{len(text)}.py"
    server.notify(
        "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}
    )
    for n, line in enumerate(LINES):
        for character in range(units(line, server.encoding) + 3):  # includes columns past the end of the line
            column, prefix = expected(line, character, server.encoding)
            (item,) = complete(server, uri, n, character)
            position = {"line": n, "character": column}
            assert item["range"] == {"start": position, "end": position}, (line, character)
            want = next((t for w, t in WORDS.items() if prefix.endswith(w)), DEFAULT)
            assert item["insertText"] == want, (line, character)


def test_positions_past_the_document_clamp_to_its_end(server):
    uri = f"file:///work/positions_end_{server.encoding}.py"
    server.notify(
        "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "a😀"}}
    )
    (item,) = complete(server, uri, 40, 2)
    end = {"line": 0, "character": units("a😀", server.encoding)}
    assert item["range"] == {"start": end, "end": end}


def test_incremental_edits_in_the_negotiated_encoding(server):
    uri = f"file:///work/positions_edit_{server.encoding}.py"
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "😀😀 = 1\r\n数据\r\n"}},
    )
    # replace the second emoji by "x" and type "😀" after 数据, using columns in the negotiated encoding
    e = server.encoding
    start, end = units("😀", e), units("😀😀", e)
    changes = [
        {"range": {"start": {"line": 0, "character": start}, "end": {"line": 0, "character": end}}, "text": "x"},
        {
            "range": {
                "start": {"line": 1, "character": units("数据", e)},
                "end": {"line": 1, "character": units("数据", e)},
            },
            "text": "x😀",
        },
    ]
    server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes})
    (item,) = complete(server, uri, 1, units("数据x😀", e))
    assert item["insertText"] == WORDS["x😀"]
    (item,) = complete(server, uri, 0, units("😀x", e))
    assert item["range"]["start"] == {"line": 0, "character": units("😀x", e)}


def test_partial_accept_length_is_counted_in_the_negotiated_encoding(server):
    """`acceptedLength` counts like a position's character (UTF-16 units in VS Code, bytes in Neovim's utf-8);
    the stats count code points, so a partial accept over an emoji must not be over-counted."""
    uri = f"file:///work/positions_accept_{server.encoding}.py"
    server.notify(
        "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "emo"}}
    )
    (item,) = complete(server, uri, 0, 3)
    assert item["insertText"] == WORDS["emo"]
    sid = item["command"]["arguments"][0]["id"]
    before = server.request("dcopilot/stats", None)["result"]
    taken = "ji = '😀"  # the emoji is 2 UTF-16 units and 4 UTF-8 bytes
    server.notify("dcopilot/didAcceptCompletion", {"id": sid, "acceptedLength": units(taken, server.encoding)})
    after = server.request("dcopilot/stats", None)["result"]
    assert after["partiallyAccepted"] - before["partiallyAccepted"] == 1
    assert after["acceptedChars"] - before["acceptedChars"] == len(taken)
