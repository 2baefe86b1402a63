"""Suggestions (code-point offsets of a snapshot) -> LSP items, ranges and edits in the negotiated encoding.

Pure functions of a `Snapshot` and service structs, table-tested in tests/lsp/test_lsp_units.py.
"""

from __future__ import annotations

from dcopilot.engine.tasks.postprocess import AUTO_CLOSERS
from dcopilot.lsp.documents import Snapshot
from dcopilot.lsp.protocol import CMD_ACCEPTED
from dcopilot.lsp.service import Suggestion, TextEdit
from lsprotocol import types


def absorb_line_end(snap: Snapshot, s: Suggestion) -> Suggestion:
    """Replace to the end of the line when the rest of the line is auto-closed text the suggestion repeats.

    With `foo(|)` and suggestion `a, b)`, inserting would give `foo(a, b))`; replacing `)` as well keeps one.
    """
    if s.end != s.start or s.start != snap.offset:
        return s
    line_end = snap.line_end(snap.offset)
    rest = snap.text[snap.offset : line_end]
    if (
        not rest.strip()
        or not set(rest) <= AUTO_CLOSERS
        or "\n" in s.text
        or not s.text.rstrip().endswith(rest.rstrip())
    ):
        return s
    return Suggestion(text=s.text, start=s.start, end=line_end, score=s.score)


def lsp_range(snap: Snapshot, start: int, end: int) -> types.Range:
    (l1, c1), (l2, c2) = snap.position(start), snap.position(end)
    return types.Range(start=types.Position(line=l1, character=c1), end=types.Position(line=l2, character=c2))


def single_line(snap: Snapshot, s: Suggestion) -> Suggestion | None:
    """Inline and completion ranges must stay on one line; clip the end to the start's line or drop."""
    line_end = snap.line_end(s.start)
    if s.end <= line_end:
        return s
    return None


def accepted_command(suggestion_id: str) -> types.Command:
    return types.Command(title="dcopilot: suggestion accepted", command=CMD_ACCEPTED, arguments=[{"id": suggestion_id}])


def inline_item(snap: Snapshot, s: Suggestion, suggestion_id: str) -> types.InlineCompletionItem:
    return types.InlineCompletionItem(
        insert_text=s.text,
        range=lsp_range(snap, s.start, s.end),
        command=accepted_command(suggestion_id),
    )


def word_start(snap: Snapshot, offset: int) -> int:
    """Start of the identifier characters right before `offset` (on its line); `offset` when there are none."""
    start = offset
    while start > 0 and (snap.text[start - 1].isalnum() or snap.text[start - 1] == "_"):
        start -= 1
    return start


def completion_item(snap: Snapshot, s: Suggestion, suggestion_id: str, rank: int) -> types.CompletionItem:
    # Menus filter items by the word already typed (eglot, Helix, Sublime): the edit starts at that word and
    # repeats it, so `ret|` + `urn a` is the item `return a` replacing `ret`, and survives the filter.
    start = word_start(snap, s.start)
    new_text = snap.text[start : s.start] + s.text
    first = new_text.lstrip().partition("\n")[0].rstrip("\r")
    label = (first[:60] + "…") if len(first) > 60 else (first or "⏎")  # empty only for whitespace-only text
    return types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Snippet,
        detail="AI suggestion (dcopilot)",
        label_details=types.CompletionItemLabelDetails(description="dcopilot AI"),
        documentation=s.text,  # a plain string: every client can show it
        sort_text=f"~dcopilot{rank:02d}",  # after the language server's own items
        filter_text=new_text.partition("\n")[0].rstrip("\r"),
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=lsp_range(snap, start, s.end), new_text=new_text),
        data={"dcopilot": suggestion_id},
        command=accepted_command(suggestion_id),
    )


def text_edits(snap: Snapshot, edits: list[TextEdit]) -> list[types.TextEdit]:
    return [types.TextEdit(range=lsp_range(snap, e.start, e.end), new_text=e.new_text) for e in edits]
