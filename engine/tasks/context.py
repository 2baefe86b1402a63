"""Cross-file context: windows of other documents ranked by how many identifiers they share with the code around
the cursor (pure functions, no torch; the language server and the quality benchmark both use them).

A completion often needs a name defined in another open file or in a region the user just edited; a window of
lines that shares identifiers with the code around the cursor is the cheapest predictor of that (Jaccard
similarity of identifier sets, as in "neighbouring tabs" retrieval). The best few become `Snippet`s of the request.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import add, ge, sub, truediv

from dcopilot.engine.tasks.requests import SNIPPETS, Snippet

IDENTIFIER = re.compile(r"[^\W\d]\w*")  # a letter or _ then letters, digits, _ (any script)
WINDOW_LINES = 20  # lines per candidate window
WINDOW_STRIDE = 10  # windows overlap by half: a definition cut by one window is whole in the next
QUERY_BEFORE = 20  # lines before the cursor's line that describe "the code around the cursor"
QUERY_AFTER = 5
MIN_SIMILARITY = 0.05  # below this a window shares only keywords and common names: not worth prompt tokens


@dataclass(frozen=True)
class Window:
    path: str
    first: int  # its first line in its document
    text: str
    ids: frozenset[str]

    @property
    def last(self) -> int:
        return self.first + self.text.count("\n") - (1 if self.text.endswith("\n") else 0)


def identifiers(text: str) -> frozenset[str]:
    """Identifiers of two characters or more (single letters say little about where code belongs)."""
    return frozenset(m for m in IDENTIFIER.findall(text) if len(m) > 1)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def windows(
    path: str, lines: Sequence[str], first: int = 0, size: int = WINDOW_LINES, stride: int = WINDOW_STRIDE
) -> list[Window]:
    """Windows of `size` lines every `stride` lines over `lines` (with their line ends), the last one ending at the
    last line; `first` is the document line of lines[0]. Blank-only windows are left out."""
    if size < 1 or stride < 1:
        raise ValueError("window size and stride must be positive")
    n = len(lines)
    starts = list(range(0, max(n - size, 0) + 1, stride))
    if starts[-1] + size < n:  # a document no longer than a window has its one window at 0, reaching its end
        starts.append(n - size)
    out = []
    for s in starts:
        text = "".join(lines[s : s + size])
        if text.strip():
            out.append(Window(path, first + s, text, identifiers(text)))
    return out


def query(text: str, cursor: int, before: int = QUERY_BEFORE, after: int = QUERY_AFTER) -> frozenset[str]:
    """Identifiers of the code around the cursor: `before` lines above its line, its line, `after` lines below.
    The identifier being typed counts too: it is the best clue to what comes next."""
    pos = cursor
    for _ in range(before + 1):  # the cursor's line start, then `before` line starts above it
        pos = text.rfind("\n", 0, pos)
        if pos < 0:
            break
    start = pos + 1
    end = cursor
    for _ in range(after + 1):  # the cursor's line end, then `after` line ends below it
        found = text.find("\n", end)
        end = len(text) if found < 0 else found + 1
        if found < 0:
            break
    return identifiers(text[start:end])


def rank(
    around: frozenset[str], candidates: Iterable[Window], limit: int = SNIPPETS, min_similarity: float = MIN_SIMILARITY
) -> list[Window]:
    """The `limit` windows most similar to `around`, best first; windows overlapping a better one of the same path,
    or repeating its text, are left out. Ties go to the earlier path and line, so the result is deterministic."""
    scored = [(jaccard(around, w.ids), w) for w in candidates]
    scored = [(s, w) for s, w in scored if s >= min_similarity]
    scored.sort(key=lambda sw: (-sw[0], sw[1].path, sw[1].first))
    return _pick((w for _, w in scored), limit)


def _pick(ordered: Iterable[Window], limit: int) -> list[Window]:
    """The first `limit` of `ordered` that neither overlap a chosen window of the same path nor repeat its text."""
    chosen: list[Window] = []
    for w in ordered:
        if len(chosen) == limit:
            break
        if any((c.path == w.path and c.first <= w.last and w.first <= c.last) or c.text == w.text for c in chosen):
            continue
        chosen.append(w)
    return chosen


@dataclass(frozen=True)
class Index:
    """Windows with, for each identifier, the positions of the windows that hold it. Ranking then counts shared
    identifiers by walking the query's postings (a C loop) instead of intersecting every window's set: a few ms
    instead of tens at the language server's cap of documents."""

    windows: tuple[Window, ...]
    postings: Mapping[str, list[int]] = field(repr=False)
    sizes: tuple[int, ...] = field(repr=False)  # identifiers per window


def index(windows: Iterable[Window]) -> Index:
    ws = tuple(windows)
    postings: dict[str, list[int]] = {}
    for i, w in enumerate(ws):
        for name in w.ids:
            postings.setdefault(name, []).append(i)
    return Index(ws, postings, tuple(len(w.ids) for w in ws))


FIRST_CUT = 8  # rank_indexed sorts this many windows per snippet wanted (more only when overlaps use them up)


def rank_indexed(
    around: frozenset[str], indexes: Iterable[Index], limit: int = SNIPPETS, min_similarity: float = MIN_SIMILARITY
) -> list[Window]:
    """rank(around, every window of `indexes` in order, limit, min_similarity), the same windows in the same order,
    without scoring windows that share nothing with `around` or sorting all the others."""
    indexes = list(indexes)
    if min_similarity <= 0 or limit <= 0:  # a window sharing nothing can qualify: score them all
        return rank(around, chain.from_iterable(ix.windows for ix in indexes), limit, min_similarity)
    flat: list[Window] = []  # every window in candidate order: position = tie-break of equal keys (stable sort)
    scores: list[float] = []
    where: list[int] = []  # position in `flat` of scores[k]
    size = len(around)
    for ix in indexes:
        shared: Counter[int] = Counter()
        shared.update(chain.from_iterable(ix.postings[n] for n in around if n in ix.postings))
        base = len(flat)
        flat += ix.windows
        # jaccard() for every window that shares a name (the same float: the same ints, divided once), in C loops
        held, inters = list(shared), list(shared.values())
        unions = map(sub, map(add, map(ix.sizes.__getitem__, held), repeat(size)), inters)
        ss = list(map(truediv, inters, unions))
        kept = list(map(ge, ss, repeat(min_similarity)))
        scores += compress(ss, kept)
        where += map(base.__add__, compress(held, kept))
    cut = FIRST_CUT * limit
    while True:
        # Every window scoring at least the cut-th best: rank's order restricted to them is a prefix of its order.
        floor = sorted(scores, reverse=True)[cut - 1] if cut < len(scores) else min_similarity
        head = [k for k in range(len(scores)) if scores[k] >= floor]
        head.sort(key=lambda k: (-scores[k], flat[where[k]].path, flat[where[k]].first, where[k]))
        chosen = _pick((flat[where[k]] for k in head), limit)
        if len(chosen) == limit or len(head) == len(scores):
            return chosen
        cut *= 4


def snippets(chosen: Iterable[Window]) -> tuple[Snippet, ...]:
    return tuple(Snippet(path=w.path, text=w.text) for w in chosen)
