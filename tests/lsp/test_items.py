"""Suggestions -> LSP items (lsp/items.py): positions checked against hand-counted columns in each encoding,
snapshots that start mid-document, CRLF lines, and every field an editor reads."""

import pytest
from dcopilot.lsp import items
from dcopilot.lsp.documents import Snapshot
from dcopilot.lsp.protocol import CMD_ACCEPTED
from dcopilot.lsp.service import Suggestion, TextEdit
from lsprotocol import types

# Survivors of `python scripts/mutation.py lsp/items.py` that cannot change behaviour: (function, mutated line,
# why). The runner marks a survivor equivalent only when it is listed here.
EQUIVALENT_MUTANTS: list[tuple[str, str, str]] = []


def snap(text: str, offset: int, line0: int = 0, encoding: str = "utf-16") -> Snapshot:
    """An excerpt starting at document line `line0`, column 0."""
    return Snapshot(
        uri="file:///x.py",
        version=3,
        language_id="python",
        text=text,
        offset=offset,
        line0=line0,
        col0=0,
        encoding=encoding,
    )


def at(text: str, offset: int, suggestion: str, end: int | None = None, score: float = 0.5) -> Suggestion:
    return Suggestion(text=suggestion, start=offset, end=offset if end is None else end, score=score)


@pytest.mark.parametrize(
    "text, cursor, suggestion, end",
    [
        ("foo()", "foo(", "a, b)", 5),  # absorbs the auto-closed paren
        ("foo()\r\nnext", "foo(", "a)", 5),  # up to the line end, not into the CRLF
        ("foo() \nnext", "foo(", "a)", 6),  # trailing blanks after the closers go too
        ("f(g())\nx", "f(g(", "1))", 6),
        ("foo()", "foo(", "a, b", 4),  # does not repeat it: plain insertion
        ("x = [", "x = [", "1]", 5),  # nothing right of the cursor
        ("s = ''", "s = '", "abc'", 6),
        ("foo(bar)", "foo(", "a)", 4),  # real text right of the cursor: never replaced
        ("foo()\nnext", "foo(", "a,\n b)", 4),  # multi-line suggestion: insertion only
        ("foo(  \nx", "foo(", "a  ", 4),  # only blanks right of the cursor: nothing to absorb
        ("foo()", "foo(", "a)\r", 5),
        ("f(" + ")]}>\"'`;,: \t", "f(", "x)]}>\"'`;,:", 14),  # every auto-inserted closer at once
        ("foo(  )", "foo(", "a)", 4),  # blanks before the closer: the suggestion does not end with them
    ],
)
def test_absorb_line_end(text, cursor, suggestion, end):
    offset = len(cursor)
    s = items.absorb_line_end(snap(text, offset), at(text, offset, suggestion))
    assert (s.text, s.start, s.end, s.score) == (suggestion, offset, end, 0.5)


def test_absorb_line_end_leaves_other_suggestions_alone():
    sn = snap("foo()", 4)
    replacing = at("foo()", 4, "a)", end=5)
    assert items.absorb_line_end(sn, replacing) is replacing
    elsewhere = Suggestion(text="a)", start=3, end=3)
    assert items.absorb_line_end(sn, elsewhere) is elsewhere


@pytest.mark.parametrize(
    "text, start, end, encoding, expected",
    [
        ("ab\ncd😀e\nf", 5, 7, "utf-16", ((11, 2), (11, 5))),  # the emoji is 2 UTF-16 units
        ("ab\ncd😀e\nf", 5, 7, "utf-8", ((11, 2), (11, 7))),
        ("ab\r\ncd", 1, 6, "utf-32", ((10, 1), (11, 2))),
        ("ab\ncd", 0, 0, "utf-16", ((10, 0), (10, 0))),
    ],
)
def test_lsp_range(text, start, end, encoding, expected):
    r = items.lsp_range(snap(text, 0, line0=10, encoding=encoding), start, end)
    assert ((r.start.line, r.start.character), (r.end.line, r.end.character)) == expected


@pytest.mark.parametrize(
    "text, start, end, kept",
    [("ab()\ncd", 3, 4, True), ("ab()\ncd", 3, 3, True), ("ab()\ncd", 3, 5, False), ("ab()\r\ncd", 2, 5, False)],
)
def test_single_line(text, start, end, kept):
    s = Suggestion(text="x", start=start, end=end)
    assert items.single_line(snap(text, start), s) == (s if kept else None)


@pytest.mark.parametrize(
    "text, offset, start",
    [("x = foo.bar_9", 13, 8), ("abc", 3, 0), ("abc", 0, 0), ("a(", 2, 2), ("x\nret", 5, 2), ("数据x", 3, 0)],
)
def test_word_start(text, offset, start):
    assert items.word_start(snap(text, offset), offset) == start


def test_inline_item_fields():
    text = "a = 1\nfoo(x😀, )\n"
    offset = text.index(", )") + 2
    item = items.inline_item(snap(text, offset, line0=4), at(text, offset, "y)", end=offset + 1), "s-1")
    assert item.insert_text == "y)"
    assert item.range == types.Range(
        start=types.Position(line=5, character=9), end=types.Position(line=5, character=10)
    )
    assert item.command == types.Command(
        title="dcopilot: suggestion accepted", command=CMD_ACCEPTED, arguments=[{"id": "s-1"}]
    )


@pytest.mark.parametrize(
    "line, suggestion, label, filter_text",
    [
        ("    ret", "urn a + b", "return a + b", "return a + b"),  # the typed word is part of the item
        ("    ", "\n    pass", "pass", ""),  # starts on the next line: labelled by its first visible line
        ("    ", "\n", "⏎", ""),  # only a line break
        ("x = ", "y\r\nz", "y", "y"),
        ("s = ", "'" + "a" * 70 + "'", "'" + "a" * 59 + "…", "'" + "a" * 70 + "'"),  # long first lines are cut
        ("s = ", "b" * 60, "b" * 60, "b" * 60),  # exactly 60 characters: whole
        ("s = ", "c" * 61, "c" * 60 + "…", "c" * 61),
        ("    ", "x = 1  \r\ny\nz", "x = 1  ", "x = 1  "),  # only the line break is dropped
        ("", "fooX\nbar\nbaz", "fooX", "fooX"),
        ("", "\r\nq", "q", ""),
    ],
)
def test_completion_item_label_and_filter(line, suggestion, label, filter_text):
    text = "a = 1\n" + line
    item = items.completion_item(snap(text, len(text)), at(text, len(text), suggestion), "id", 0)
    assert (item.label, item.filter_text) == (label, filter_text)


def test_completion_item_fields():
    text = "a = 1\n    ret"
    s = at(text, len(text), "urn a\n", score=0.9)
    item = items.completion_item(snap(text, len(text), line0=2), s, "s-7", 3)
    assert item.kind == types.CompletionItemKind.Snippet
    assert item.detail == "AI suggestion (dcopilot)"
    assert item.label_details == types.CompletionItemLabelDetails(description="dcopilot AI")
    assert item.documentation == "urn a\n"
    assert item.sort_text == "~dcopilot03"
    assert item.insert_text_format == types.InsertTextFormat.PlainText
    assert item.text_edit == types.TextEdit(
        range=types.Range(start=types.Position(line=3, character=4), end=types.Position(line=3, character=7)),
        new_text="return a\n",
    )
    assert item.data == {"dcopilot": "s-7"}
    assert item.command.arguments == [{"id": "s-7"}] and item.command.command == CMD_ACCEPTED


def test_completion_item_rank_is_zero_padded():
    item = items.completion_item(snap("x", 1), at("x", 1, "y"), "id", 12)
    assert item.sort_text == "~dcopilot12"


def test_text_edits():
    text = "ab\ncd😀\n"
    edits = [TextEdit(start=0, end=2, new_text="X"), TextEdit(start=5, end=6, new_text="")]
    out = items.text_edits(snap(text, 0, line0=1), edits)
    assert out == [
        types.TextEdit(
            range=types.Range(start=types.Position(line=1, character=0), end=types.Position(line=1, character=2)),
            new_text="X",
        ),
        types.TextEdit(
            range=types.Range(start=types.Position(line=2, character=2), end=types.Position(line=2, character=4)),
            new_text="",
        ),
    ]
