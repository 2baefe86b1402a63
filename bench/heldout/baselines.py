"""Baselines a completion model must beat: pure functions of the document, the cursor and the cursor kind.

Each returns the text it would insert at the cursor ("" = nothing shown). Two facts about the truth are given to
them, both generous to the baselines: how many lines the truth has (block kind) and how long it is (caps an
'inside' guess, and the bigram model's output).
- empty:      inserts nothing;
- line_above: the nearest non-blank line(s) above, from the cursor's column (whole lines for line and block);
- copy:       the best copy from the same file: the continuation of an earlier line that starts like the current
              line before the cursor; with nothing typed on the line, an earlier line whose previous line equals the
              current previous line (more equal lines before it rank higher, then the nearest);
- bigram:     greedy next-token choice from token bigram counts (calibration files of the language, never test
              files, plus the document itself), stopping at the end of the line or after the truth's line count.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|\s+|.")
MAX_BIGRAM_TOKENS = 96
CONTEXT_LINES = 3  # equal lines before a copy candidate that still raise its rank


@dataclass(frozen=True)
class Oracle:
    lines: int  # lines in the truth
    chars: int  # characters in the truth

    @staticmethod
    def of(target: str) -> Oracle:
        return Oracle(lines=target.count("\n") + 1, chars=len(target))


def _fit(text: str, kind: str, oracle: Oracle) -> str:
    keep = oracle.lines if kind == "block" else 1
    text = "\n".join(text.split("\n")[:keep])
    return text[: oracle.chars] if kind == "inside" else text


def _current_line(doc: str, cursor: int) -> tuple[list[str], str, int]:
    """(lines above the cursor's line, the cursor's line up to the cursor, column)."""
    start = doc.rfind("\n", 0, cursor) + 1
    above = doc[:start].split("\n")[:-1] if start else []
    return above, doc[start:cursor], cursor - start


def empty(doc: str, cursor: int, kind: str, oracle: Oracle) -> str:
    return ""


def line_above(doc: str, cursor: int, kind: str, oracle: Oracle) -> str:
    above, _, col = _current_line(doc, cursor)
    lines = [ln for ln in above if ln.strip()]
    if not lines:
        return ""
    if kind in ("rest", "inside"):
        return _fit(lines[-1][col:], kind, oracle)
    take = lines[-oracle.lines :] if kind == "block" else lines[-1:]
    return _fit("\n".join([take[0].lstrip(), *take[1:]]), kind, oracle)


def _reindent(line: str, delta: int, unit: str) -> str:
    if delta >= 0:
        return unit * delta + line if line.strip() else line
    strip = min(-delta, len(line) - len(line.lstrip()))
    return line[strip:]


def copy(doc: str, cursor: int, kind: str, oracle: Oracle) -> str:
    above, before, _ = _current_line(doc, cursor)
    typed = before.lstrip()
    indent = len(before) - len(typed)
    best, best_rank = None, None
    for j, ln in enumerate(above):
        content = ln.lstrip()
        if not content.startswith(typed) or len(content) <= len(typed):
            continue
        context = 0  # equal (stripped) lines right before line j and the current line
        while (
            context < CONTEXT_LINES
            and j - context - 1 >= 0
            and len(above) - context - 1 > j
            and above[j - context - 1].strip() == above[len(above) - context - 1].strip()
            and above[j - context - 1].strip()
        ):
            context += 1
        if not typed and context == 0:
            continue
        rank = (context, j)
        if best_rank is None or rank > best_rank:
            best, best_rank = j, rank
    if best is None:
        return ""
    first = above[best].lstrip()[len(typed) :]
    delta = indent - (len(above[best]) - len(above[best].lstrip()))
    unit = (before[:indent] or " ")[0]
    more = [_reindent(ln, delta, unit) for ln in above[best + 1 : best + oracle.lines]] if kind == "block" else []
    return _fit("\n".join([first, *more]), kind, oracle)


class Bigram:
    """Token bigram counts; `predict` may add the document's own counts and remove one file's."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = defaultdict(Counter)

    @staticmethod
    def pairs(text: str) -> Counter:
        toks = TOKEN.findall(text)
        return Counter(itertools.pairwise(toks))

    def add(self, text: str, sign: int = 1) -> None:
        for (a, b), n in self.pairs(text).items():
            self.counts[a][b] += sign * n

    def predict(self, doc: str, cursor: int, kind: str, oracle: Oracle, exclude: str | None = None) -> str:
        """Greedy continuation; `exclude` is a training text to leave out (the case's own file)."""
        local = self.pairs(doc)
        minus = self.pairs(exclude) if exclude else Counter()
        by_prev: dict[str, Counter] = defaultdict(Counter)
        for (a, b), n in local.items():
            by_prev[a][b] += n
        for (a, b), n in minus.items():
            by_prev[a][b] -= n
        toks = TOKEN.findall(doc[max(0, cursor - 200) : cursor])
        prev = toks[-1] if toks else "\n"
        out, lines = "", 1
        for _ in range(MAX_BIGRAM_TOKENS):
            counted = Counter(self.counts.get(prev, {}))
            counted.update(by_prev.get(prev, {}))
            options = {t: n for t, n in counted.items() if n > 0}
            if not options:
                break
            tok = max(options, key=lambda t: (options[t], t))
            if "\n" in tok:
                if kind != "block" or lines >= oracle.lines:
                    break
                lines += tok.count("\n")
            out += tok
            prev = tok
            if len(out) >= oracle.chars:
                break
        return _fit(out[: oracle.chars], kind, oracle)
