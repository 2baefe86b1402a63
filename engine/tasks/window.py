"""The slice of a document the model sees around the cursor.

Prefix and suffix are cut at line boundaries under a token budget, the prefix favoured. The window's outer
edges snap to whole blocks of lines so that typing does not move them on every keystroke: a stable window
start keeps the engine's prefix cache valid, and only the tail of the prompt (the line being typed) changes.
Offsets are Python str indices (code points) into the document, as everywhere between lsp/, copilot/ and
engine/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Window:
    prefix: str  # document text in [start, cursor)
    suffix: str  # document text in [cursor, end)
    start: int
    cursor: int
    end: int
    prefix_tokens: int  # sum of per-line token counts (the budget's measure)
    suffix_tokens: int

    @property
    def line_prefix(self) -> str:
        """Text of the cursor's line before the cursor."""
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @property
    def line_suffix(self) -> str:
        """Text of the cursor's line after the cursor, without its line break."""
        cut = self.suffix.find("\n")
        line = self.suffix if cut < 0 else self.suffix[:cut]
        return line[:-1] if line.endswith("\r") else line


def split_lines(text: str) -> list[str]:
    """Split on '\\n' keeping the breaks ('\\r\\n' stays whole); unlike str.splitlines, form feeds and
    U+2028 do not end a line, so offsets match what editors call lines."""
    if not text:
        return []
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _tail_within(text: str, budget: int, count: CountTokens) -> str:
    """Longest tail of `text` whose token count fits `budget` (binary search on the start index)."""
    if count(text) <= budget:
        return text
    lo, hi = 0, len(text)  # invariant: text[hi:] fits
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if count(text[mid:]) <= budget:
            hi = mid
        else:
            lo = mid
    return text[hi:]


def _head_within(text: str, budget: int, count: CountTokens) -> str:
    """Longest head of `text` whose token count fits `budget`."""
    if count(text) <= budget:
        return text
    lo, hi = 0, len(text)  # invariant: text[:lo] fits
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if count(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid
    return text[:lo]


@dataclass
class _Side:
    """One side of the window: whole lines taken outward from the cursor's line, with their token counts."""

    lines: list[str]  # nearest the cursor first
    whole: bool  # the cursor line's piece on this side was kept whole; only then may further lines join it
    used: int  # tokens taken so far, the cursor line's piece included
    counts: list[int] = field(default_factory=list)  # tokens of each line taken, in `lines` order

    @property
    def at_edge(self) -> bool:
        return self.whole and len(self.counts) == len(self.lines)

    def grow(self, limit: int, count: CountTokens) -> None:
        """Take lines while the total stays within `limit`."""
        while self.whole and len(self.counts) < len(self.lines):
            n = count(self.lines[len(self.counts)])
            if self.used + n > limit:
                return
            self.counts.append(n)
            self.used += n

    def drop(self, n: int) -> None:
        """Give back the `n` outermost lines taken (at most all of them)."""
        for _ in range(min(n, len(self.counts))):
            self.used -= self.counts.pop()


def build_window(
    text: str,
    cursor: int,
    budget: int,
    count_tokens: CountTokens,
    prefix_share: float = 0.75,
    snap_lines: int = 8,
) -> Window:
    """Cut `text` around `cursor` to at most `budget` tokens (counted line by line).

    The cursor's own line is always kept (cut inside the line only when it alone exceeds its share). Whole
    lines are then added outwards; budget one side cannot use (it reached the document's edge) goes to the
    other. The first prefix line and the last suffix line are snapped to multiples of `snap_lines` (absolute
    line numbers), trading a few lines of context for a window edge that stays put while the user types.
    """
    if not 0 <= cursor <= len(text):
        raise ValueError(f"cursor {cursor} outside the document (length {len(text)})")
    if budget < 2:
        raise ValueError(f"context budget must be at least 2 tokens, got {budget}")
    if not 0.0 < prefix_share < 1.0:
        raise ValueError(f"prefix_share must be in (0, 1), got {prefix_share}")
    snap = max(1, snap_lines)
    before, after = text[:cursor], text[cursor:]
    head_lines = split_lines(before)
    # The cursor's partial line is the last element of head_lines unless `before` ends with a line break.
    partial = "" if not head_lines or head_lines[-1].endswith("\n") else head_lines.pop()
    tail_lines = split_lines(after)
    rest = tail_lines.pop(0) if tail_lines else ""

    prefix_budget = max(1, int(budget * prefix_share))
    suffix_budget = budget - prefix_budget

    partial_kept = _tail_within(partial, prefix_budget, count_tokens)
    p_used = count_tokens(partial_kept) if partial_kept else 0
    rest_kept = _head_within(rest, suffix_budget, count_tokens)
    s_used = count_tokens(rest_kept) if rest_kept else 0

    # Greedy outward growth; each side's leftover is offered to the other after its own pass. Lines beyond a cursor
    # line that had to be cut would not be contiguous with it, so such a side takes none.
    before_side = _Side(head_lines[::-1], whole=len(partial_kept) == len(partial), used=p_used)
    after_side = _Side(tail_lines, whole=len(rest_kept) == len(rest), used=s_used)

    # Leftover moves across only from a side that reached the document's edge: otherwise the suffix's size would
    # follow the prefix's token count, which changes with every keystroke, and the prompt head with it.
    before_side.grow(prefix_budget, count_tokens)
    after_side.grow(budget - before_side.used if before_side.at_edge else suffix_budget, count_tokens)
    if after_side.at_edge:
        before_side.grow(budget - after_side.used, count_tokens)

    # Snap: drop prefix lines until the first kept line's number is a multiple of `snap`, unless all lines fit.
    first = len(head_lines) - len(before_side.counts)  # index of the first kept head line (== its line number)
    if first > 0 and first % snap:
        before_side.drop(snap - first % snap)
    last = len(head_lines) + len(after_side.counts)  # line number of the last kept suffix line
    if len(after_side.counts) < len(tail_lines) and (last + 1) % snap:
        after_side.drop((last + 1) % snap)

    p_counts, s_counts = before_side.counts, after_side.counts
    p_used, s_used = before_side.used, after_side.used
    prefix = "".join(head_lines[len(head_lines) - len(p_counts) :]) + partial_kept
    suffix = rest_kept + "".join(tail_lines[: len(s_counts)])
    return Window(
        prefix=prefix,
        suffix=suffix,
        start=cursor - len(prefix),
        cursor=cursor,
        end=cursor + len(suffix),
        prefix_tokens=p_used,
        suffix_tokens=s_used,
    )


def tail_text_budget(k: int) -> int:
    """Tokens of suffix text a layout without the suffix in its prompt (B) windows: just enough for K pinned."""
    return 2 * k + 8


def cursor_window(text: str, cursor: int, suffix_in_prompt: bool, budget: int, k: int, count: CountTokens) -> Window:
    """The window a prompt of `budget` tokens shows: prefix and suffix share it when the suffix is in the prompt;
    otherwise the prefix takes it all, and only enough suffix text for the K pinned canvas tokens is cut."""
    if suffix_in_prompt:
        return build_window(text, cursor, budget, count)
    tail = tail_text_budget(k)
    return build_window(text, cursor, budget + tail, count, prefix_share=budget / (budget + tail))


def head_lines_within(text: str, budget: int, count: CountTokens) -> str:
    """The longest run of whole leading lines of `text` whose token count (of the run as one string) fits
    `budget`; when not even the first line fits, the longest head of it that does (a snippet cut for a prompt)."""
    lines = split_lines(text)
    lo, hi = 0, len(lines)  # invariant: lines[:lo] fits, lines[:hi + 1] does not (or hi is every line)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count("".join(lines[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if lo:
        return "".join(lines[:lo])
    return _head_within(lines[0], budget, count) if lines else ""
