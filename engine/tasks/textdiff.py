"""Minimal text edits that turn one string into another (for in-line edits of a document range).

Lines are matched first (difflib), then each changed block is narrowed to the characters that differ by trimming
its common head and tail, so an edit is one readable hunk rather than scattered single characters.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TextEdit:
    start: int  # code-point offsets, end exclusive
    end: int
    text: str


def _common_head(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_tail(a: str, b: str, limit: int) -> int:
    n = min(len(a), len(b)) - limit
    i = 0
    while i < n and a[-1 - i] == b[-1 - i]:
        i += 1
    return i


def diff_edits(original: str, rewritten: str, base: int = 0) -> list[TextEdit]:
    """Sorted edits with unchanged text between them, offsets shifted by `base` (the range's start in the document).

    apply_edits(original, diff_edits(original, rewritten)) == rewritten, every edit lies inside
    [base, base + len(original)], and an edit that replaces text by text differs from it in both end characters.
    """
    a = original.splitlines(keepends=True)
    b = rewritten.splitlines(keepends=True)
    a_off = [0]
    for line in a:
        a_off.append(a_off[-1] + len(line))
    b_off = [0]
    for line in b:
        b_off.append(b_off[-1] + len(line))
    edits: list[TextEdit] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old = original[a_off[i1] : a_off[i2]]
        new = rewritten[b_off[j1] : b_off[j2]]
        head = _common_head(old, new)
        tail = _common_tail(old, new, head)
        # A changed block never has old == new (its lines differ), so every edit changes something; and blocks
        # are separated by at least one equal line, so edits never touch each other.
        edits.append(TextEdit(base + a_off[i1] + head, base + a_off[i2] - tail, new[head : len(new) - tail]))
    return edits


def apply_edits(text: str, edits: Sequence[TextEdit]) -> str:
    """Apply sorted, non-overlapping edits (offsets into `text`)."""
    out: list[str] = []
    pos = 0
    for e in edits:
        if e.start < pos or e.end < e.start or e.end > len(text):
            raise ValueError(f"edit {e.start}..{e.end} overlaps, is reversed or lies past the text end")
        out.append(text[pos : e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)
