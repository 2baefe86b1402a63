"""Candidates from context: continuations of the cursor's line found in the document and its snippets (pure).

Code repeats itself: a line that starts like the text before the cursor often continues the way an earlier one
did, and after a line seen before, the line that followed it then often follows again (a repeated structure).
Repeats need not start a line: wherever the characters right before the cursor occur again (an echo: the same
call's arguments, a keyword argument, the next item after a separator), the rest of that line is a candidate too.
On a fresh line the code after the cursor counts as much as the code before it: where the line above the cursor
and the line below it occur again a few lines apart, what lies between them there is a candidate (a bridge), as
long as it is: often the body or the run of items the cursor's gap once held.
These continuations join the model's hypotheses; the model's scoring pass ranks them all, so a retrieved text is
shown only when the model finds it at least as likely as its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from dcopilot.engine.tasks.requests import RETRIEVED

CONTEXT_LINES = 3  # equal lines before (or after) a match that still raise its rank
MAX_BLOCK_LINES = 6  # lines a block continuation takes at most
SCAN_LINES = 4000  # lines of the document either side of the cursor searched (the window sees far fewer)
ECHO_MIN = 6  # characters before the cursor an echo must repeat; more while they hold under ECHO_SOLID non-blanks
ECHO_SOLID = 3  # (a shorter or blanker key, like "    " or "(", occurs everywhere by chance)
SHARED_MAX = 64  # characters right before a match compared with those before the cursor, at most


@dataclass(frozen=True)
class Match:
    text: str  # the continuation to insert at the cursor
    context: int  # equal non-blank lines right before the match and the cursor's line (more: a surer repeat)
    typed: int  # characters of the cursor's line it starts with
    source: int  # 0: the document itself, 1 + i: snippet i
    distance: int  # lines between the match and the cursor (within the document; 0 for snippets)
    shared: int = 0  # characters right before the match equal to those right before the cursor (<= SHARED_MAX)
    after: int = 0  # equal non-blank lines right after the match's last line and after the cursor's line

    def key(self) -> tuple:
        """Sort key, best first: more repeated lines around it (before and after), then more characters shared right
        before it (by powers of two: twice as many is a surer repeat, one more is noise), more typed text matched,
        the document before snippets, the nearest line, a block before its first line alone."""
        return (
            -(self.context + self.after),
            -self.shared.bit_length(),
            -self.typed,
            self.source,
            self.distance,
            -self.text.count("\n"),
            self.text,
        )


def shared_before(text: str, at: int, before: str) -> int:
    """How many characters right before text[at] equal those at the end of `before` (at most SHARED_MAX)."""
    a, b = text[max(0, at - SHARED_MAX) : at], before[-SHARED_MAX:]
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def echo_key(before: str) -> str:
    """The end of `before` an echo repeats: ECHO_MIN characters, more until ECHO_SOLID of them are not blank
    ("" when `before` has too little text)."""
    for n in range(ECHO_MIN, SHARED_MAX + 1):
        key = before[-n:]
        if len(key) < n:
            return ""
        if sum(not c.isspace() for c in key) >= ECHO_SOLID:
            return key
    return ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _equal_run(lines: Sequence[str], k: int, step: int, wants: Sequence[str]) -> int:
    """How many of `wants` (stripped, nearest first, at most CONTEXT_LINES) equal the non-blank lines met walking
    from lines[k] in steps of `step` (-1: the lines before a match, 1: those after it)."""
    n = 0
    for want in wants[:CONTEXT_LINES]:
        while 0 <= k < len(lines) and not lines[k].strip():
            k += step
        if not 0 <= k < len(lines) or lines[k].strip() != want:
            break
        n += 1
        k += step
    return n


def _context(lines: Sequence[str], j: int, previous: Sequence[str]) -> int:
    """Equal (stripped, non-blank) lines right before lines[j] and right before the cursor (`previous`, nearest
    first)."""
    return _equal_run(lines, j - 1, -1, previous)


def _after(lines: Sequence[str], j: int, following: Sequence[str]) -> int:
    """Equal (stripped, non-blank) lines right after lines[j] and right after the cursor's line (`following`,
    nearest first)."""
    return _equal_run(lines, j + 1, 1, following)


def _bridge(lines: Sequence[str], j: int, nearest_below: str, indent: str) -> tuple[int, int, str] | None:
    """With lines[j] equal to the line above the cursor: (first, last, text) of the lines between it and the next
    line equal to `nearest_below` (the line below the cursor) at most MAX_BLOCK_LINES further, blank ones at either
    end left out, re-indented from the first one's indent to `indent`; None when there is no such line or nothing
    lies between."""
    for k in range(j + 1, min(len(lines), j + MAX_BLOCK_LINES + 2)):
        if lines[k].strip() != nearest_below:
            continue
        first, last = j + 1, k - 1
        while first <= last and not lines[first].strip():
            first += 1
        while last >= first and not lines[last].strip():
            last -= 1
        if first > last:
            return None
        base = _indent(lines[first])
        body = (_reindent(ln, base, indent) for ln in lines[first + 1 : last + 1])
        return first, last, "\n".join([lines[first].strip(), *body])
    return None


def _reindent(line: str, base: int, indent: str) -> str:
    """`line` moved from a block whose first line is indented `base` to one at `indent`: deeper or shallower by
    as much as before ("" for a blank line; a line shallower than the new indent allows starts at column 0)."""
    if not line.strip():
        return ""
    shift = _indent(line) - base
    if shift >= 0:
        return indent + line[base:]
    return indent[: max(0, len(indent) + shift)] + line.lstrip(" \t")


def _block(lines: Sequence[str], j: int, first: str, indent: str) -> str | None:
    """lines[j]'s continuation `first` plus the lines of its body (deeper-indented lines after it), re-indented
    from lines[j]'s indent to `indent`; None when lines[j] has no body."""
    base = _indent(lines[j])
    body = []
    for ln in lines[j + 1 : j + MAX_BLOCK_LINES]:
        if ln.strip() and _indent(ln) <= base:
            break
        body.append(ln)
    while body and not body[-1].strip():
        body.pop()
    if not body:
        return None
    return "\n".join([first, *(_reindent(ln, base, indent) for ln in body)])


def _fit_suffix(text: str, line_suffix: str) -> str | None:
    """The continuation up to the code already right of the cursor on its line (None when that code does not
    follow it there: the continuation belongs to another line shape)."""
    if not line_suffix:
        return text
    at = text.find(line_suffix)
    return None if at <= 0 else text[:at]


def continuations(
    before: str, after: str, snippets: Sequence[str] = (), multiline: bool = True, limit: int = RETRIEVED
) -> list[Match]:
    """Up to `limit` continuations for a cursor with `before`/`after` the document text either side of it, best
    first, distinct. A line that starts like the cursor's line before the cursor (and is longer) continues it; with
    nothing typed, a line whose previous lines equal the cursor's previous lines does (equal next lines alone do
    not: a closer like "}" follows anything). With `multiline` and nothing right of the cursor, a match that opens a
    block also gives the block, and on a fresh line so does each bridge between repeats of the lines around it."""
    head = before.split("\n")
    line = head[-1]
    above = head[:-1][-SCAN_LINES:]
    below_lines = after.split("\n")
    line_suffix = below_lines[0].strip()
    below = below_lines[1 : SCAN_LINES + 1]
    typed = line.lstrip(" \t")
    indent = line[: len(line) - len(typed)]
    previous = [ln.strip() for ln in reversed(above) if ln.strip()][:CONTEXT_LINES]
    following = [ln.strip() for ln in below if ln.strip()][:CONTEXT_LINES]
    bridging = multiline and not typed and not line_suffix and bool(previous) and bool(following)

    matches: list[Match] = []
    key = echo_key(before)

    def scan(lines: Sequence[str], source: int, distance_of) -> None:
        """Matches in `lines`, consecutive lines of one text (never the cursor's own line)."""
        text = "\n".join(lines)
        starts = [0]
        for ln in lines[:-1]:
            starts.append(starts[-1] + len(ln) + 1)
        for j, ln in enumerate(lines):
            content = ln.strip()
            if len(content) <= len(typed) or not content.startswith(typed):
                continue
            ctx = _context(lines, j, previous)
            if not typed and ctx == 0:
                continue
            first = _fit_suffix(content[len(typed) :], line_suffix)
            if first is None:
                continue
            d = distance_of(j)
            at = starts[j] + _indent(ln) + len(typed)
            shared = shared_before(text, at, before)
            after = _after(lines, j, following)
            if multiline and not line_suffix:
                block = _block(lines, j, first, indent)
                if block is not None:
                    matches.append(Match(block, ctx, len(typed), source, d, shared))
            matches.append(Match(first, ctx, len(typed), source, d, shared, after))
        if bridging:
            for j, ln in enumerate(lines):
                found = _bridge(lines, j, following[0], indent) if ln.strip() == previous[0] else None
                if found is None:
                    continue
                top, bottom, bridge = found
                at = starts[top] + _indent(lines[top])
                ctx, after = _context(lines, top, previous), _after(lines, bottom, following)
                matches.append(Match(bridge, ctx, 0, source, distance_of(top), shared_before(text, at, before), after))
        if not key:
            return
        at = text.find(key)
        while at >= 0:
            end = at + len(key)
            j = bisect.bisect_right(starts, end) - 1  # the line the continuation is on
            stop = text.find("\n", end)
            rest = _fit_suffix(text[end : len(text) if stop < 0 else stop], line_suffix)
            # After a key that ends in blanks (an indent), more blanks mean a line indented otherwise: inserted at
            # the cursor it would be mis-indented.
            misaligned = rest is not None and key[-1] in " \t" and rest[:1] in (" ", "\t")
            if rest is not None and rest.strip() and not misaligned:
                shared = shared_before(text, end, before)
                ctx, after = _context(lines, j, previous), _after(lines, j, following)
                matches.append(Match(rest, ctx, min(shared, len(typed)), source, distance_of(j), shared, after))
            at = text.find(key, at + 1)

    scan(above, 0, lambda j: len(above) - j)
    scan(below, 0, lambda j: j + 1)
    for i, text in enumerate(snippets):
        scan(text.split("\n"), 1 + i, lambda j: 0)
    out: dict[str, Match] = {}
    for m in sorted(matches, key=Match.key):
        if len(out) == limit:
            break
        if m.text.strip() and m.text not in out:
            out[m.text] = m
    return list(out.values())
