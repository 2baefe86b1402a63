"""Candidates from context: continuations of the cursor's line found in the document and its snippets (pure).

Code repeats itself: a line that starts like the text before the cursor often continues the way an earlier one
did, and after a line seen before, the line that followed it then often follows again (a repeated structure).
Repeats need not start a line: wherever the characters right before the cursor occur again (an echo: the same
call's arguments, a keyword argument, the next item after a separator), the rest of that line is a candidate too.
On a fresh line the code after the cursor counts as much as the code before it: where the line above the cursor
and the line below it occur again a few lines apart, what lies between them there is a candidate (a bridge), as
long as it is: often the body or the run of items the cursor's gap once held.
A structure also repeats under other names (`def tuesday(self):` after a `def monday(self):` and its body): where
the lines before a line equal the cursor's but for a word or two renamed throughout, that line follows, renamed alike.
These continuations join the model's hypotheses; the model's scoring pass ranks them all, so a retrieved text is
shown only when the model finds it at least as likely as its own.
"""

from __future__ import annotations

import bisect
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dcopilot.engine.tasks.requests import RETRIEVED

CONTEXT_LINES = 3  # equal lines before (or after) a match that still raise its rank
MAX_BLOCK_LINES = 6  # lines a block continuation takes at most
SCAN_LINES = 4000  # lines of the document either side of the cursor searched (the window sees far fewer)
ECHO_MIN = 6  # characters before the cursor an echo must repeat; more while they hold under ECHO_SOLID non-blanks
ECHO_SOLID = 3  # (a shorter or blanker key, like "    " or "(", occurs everywhere by chance)
SHARED_MAX = 64  # characters right before a match compared with those before the cursor, at most
MAX_RENAMES = 2  # words a repeat may have renamed (def monday -> def tuesday) and still count as one
# Words that name a value or the receiver, not something the code chose: a repeat that swaps them is another
# statement, not the same one under other names.
FIXED_WORDS = frozenset(("nil", "null", "None", "undefined", "true", "false", "True", "False", "self", "this"))
ANY_WORD = r"(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+)"  # identifiers and numbers: what a rename changes
WORD = re.compile(ANY_WORD)
WORDS_AND_TEXT = re.compile(f"({ANY_WORD})")  # split: the text between words at even places, the words at odd
WORD_CHARS = str.maketrans("", "", string.ascii_letters + string.digits + "_")  # deleted: a line's non-word text


@dataclass(frozen=True)
class Match:
    text: str  # the continuation to insert at the cursor
    context: int  # equal non-blank lines right before the match and the cursor's line (more: a surer repeat)
    typed: int  # characters of the cursor's line it starts with
    source: int  # 0: the document itself, 1 + i: snippet i
    distance: int  # lines between the match and the cursor (within the document; 0 for snippets)
    shared: int = 0  # characters right before the match equal to those right before the cursor (<= SHARED_MAX)
    after: int = 0  # equal non-blank lines right after the match's last line and after the cursor's line
    renamed: int = 0  # words renamed in its context lines and text (a repeat with other names)

    def key(self) -> tuple:
        """Sort key, best first: more repeated lines around it (before and after), then more characters shared right
        before it (by powers of two: twice as many is a surer repeat, one more is noise), more typed text matched,
        the document before snippets, the nearest line, a block before its first line alone."""
        return (
            -(self.context + self.after),
            self.renamed,
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


def _nonblank(lines: Sequence[str], k: int, step: int) -> Iterator[str]:
    """The non-blank lines (stripped) met walking from lines[k] in steps of `step` (-1: up, 1: down)."""
    while 0 <= k < len(lines):
        if line := lines[k].strip():
            yield line
        k += step


def _equal_run(lines: Sequence[str], k: int, step: int, wants: Sequence[str]) -> int:
    """How many of `wants` (stripped, nearest first, at most CONTEXT_LINES) equal the non-blank lines met walking
    from lines[k] in steps of `step` (-1: the lines before a match, 1: those after it)."""
    n = 0
    for line in _nonblank(lines, k, step):
        if n == min(len(wants), CONTEXT_LINES) or line != wants[n]:
            break
        n += 1
    return n


def renaming(seen: str, want: str, names: dict[str, str]) -> dict[str, str] | None:
    """`names` grown by how each word of line `seen` becomes the word at its place in line `want` (both stripped;
    a word kept maps to itself); None when the lines differ in more than words, a word would map two ways, two
    words to one, a fixed word (FIXED_WORDS) would change, or more than MAX_RENAMES words change."""
    if seen.translate(WORD_CHARS) != want.translate(WORD_CHARS):  # the cheap test first: the same non-word text
        return None
    a, b = WORDS_AND_TEXT.split(seen), WORDS_AND_TEXT.split(want)
    if len(a) != len(b) or a[0::2] != b[0::2]:
        return None
    out = dict(names)
    for x, y in zip(a[1::2], b[1::2], strict=True):
        if out.setdefault(x, y) != y or (x != y and (x in FIXED_WORDS or y in FIXED_WORDS)):
            return None
    changed = sum(x != y for x, y in out.items())
    if changed > MAX_RENAMES or changed == len(out) or len(set(out.values())) < len(out):
        return None
    return out


def _renamed_context(lines: Sequence[str], j: int, previous: Sequence[str]) -> tuple[int, dict[str, str]]:
    """(n, renames): the non-blank lines right before lines[j] equal the first n of `previous` (nearest first, at
    most CONTEXT_LINES) but for the same words renamed throughout; (0, {}) when no word is renamed."""
    n, names = 0, dict[str, str]()
    for line in _nonblank(lines, j - 1, -1):
        grown = renaming(line, previous[n], names) if n < min(len(previous), CONTEXT_LINES) else None
        if grown is None:
            break
        n, names = n + 1, grown
    renames = {x: y for x, y in names.items() if x != y}
    return (n, renames) if renames else (0, {})


def shape_of(line: str) -> re.Pattern[str]:
    """A pattern for the lines of `line`'s shape: its non-word text, any word where it has one (a quick sieve
    for `renaming`, run over a whole text at once)."""
    parts = WORDS_AND_TEXT.split(line.strip())
    body = "".join(re.escape(p) if i % 2 == 0 else ANY_WORD for i, p in enumerate(parts))
    return re.compile(rf"^[^\S\n]*{body}[^\S\n]*$", re.MULTILINE)


def _shaped(text: str, starts: Sequence[int], shape: re.Pattern[str]) -> set[int]:
    """Indices of the lines of `text` (starting at `starts`) that have `shape`."""
    return {bisect.bisect_right(starts, m.start()) - 1 for m in shape.finditer(text)}


def _next_nonblank(lines: Sequence[str], ks: set[int]) -> set[int]:
    """Indices of the nearest non-blank line after each of lines[k] for k in `ks`."""
    out = set()
    for k in ks:
        k += 1
        while k < len(lines) and not lines[k].strip():
            k += 1
        out.add(k)
    return out


def rename(text: str, names: dict[str, str]) -> str:
    """`text` with each whole word renamed as `names` says, Capitalized and UPPER forms alike."""
    if not names:
        return text
    table = {}
    for x, y in names.items():
        table[x] = y
        table.setdefault(x[:1].upper() + x[1:], y[:1].upper() + y[1:])
        table.setdefault(x.upper(), y.upper())
    return WORD.sub(lambda m: table.get(m.group(0), m.group(0)), text)


def _context(lines: Sequence[str], j: int, previous: Sequence[str]) -> int:
    """Equal (stripped, non-blank) lines right before lines[j] and right before the cursor (`previous`, nearest
    first)."""
    return _equal_run(lines, j - 1, -1, previous)


def _after(lines: Sequence[str], j: int, following: Sequence[str]) -> int:
    """Equal (stripped, non-blank) lines right after lines[j] and right after the cursor's line (`following`,
    nearest first)."""
    return _equal_run(lines, j + 1, 1, following)


def _bridge(
    lines: Sequence[str], j: int, nearest_below: str, indent: str, names: dict[str, str]
) -> tuple[int, int, str] | None:
    """With lines[j] equal to the line above the cursor (its words renamed as `names` says): (first, last, text) of
    the lines between it and the next line equal to `nearest_below` (the line below the cursor; renamed alike) at
    most MAX_BLOCK_LINES further, blank ones at either end left out, re-indented from the first one's indent to
    `indent`; None when there is no such line or nothing lies between."""
    for k in range(j + 1, min(len(lines), j + MAX_BLOCK_LINES + 2)):
        if rename(lines[k].strip(), names) != nearest_below:
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
    shape = shape_of(previous[0]) if previous else None
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
        shaped = _shaped(text, starts, shape) if shape else set()  # lines shaped like the one above the cursor
        renamable = _next_nonblank(lines, shaped)
        for j, ln in enumerate(lines):
            content = ln.strip()
            if len(content) <= len(typed) or not content.startswith(typed):
                continue
            ctx, names = _context(lines, j, previous), dict[str, str]()
            if ctx == 0 and j in renamable:  # a repeat under other names (def monday -> def tuesday): renamed alike
                ctx, names = _renamed_context(lines, j, previous)
            if not typed and ctx == 0:
                continue
            raw = content[len(typed) :]
            first = _fit_suffix(rename(raw, names), line_suffix)
            if first is None:
                continue
            d = distance_of(j)
            at = starts[j] + _indent(ln) + len(typed)
            shared = shared_before(text, at, before)
            after = _after(lines, j, following)
            # A body below the cursor like the match's own (after > 0) is already written: not a block to offer.
            if multiline and not line_suffix and not after:
                block = _block(lines, j, raw, indent)
                if block is not None:
                    matches.append(Match(rename(block, names), ctx, len(typed), source, d, shared, 0, len(names)))
            matches.append(Match(first, ctx, len(typed), source, d, shared, after, len(names)))
        if bridging:
            for j, ln in enumerate(lines):
                if ln.strip() == previous[0]:
                    ctx, names = _context(lines, j + 1, previous), dict[str, str]()
                elif j in shaped:  # the same structure under other names (def monday -> def tuesday): renamed alike
                    ctx, names = _renamed_context(lines, j + 1, previous)
                else:
                    continue
                found = _bridge(lines, j, following[0], indent, names) if ctx else None
                if found is None:
                    continue
                top, bottom, bridge = found
                at = starts[top] + _indent(lines[top])
                after = _after(lines, bottom, following)
                shared = shared_before(text, at, before)
                matches.append(
                    Match(rename(bridge, names), ctx, 0, source, distance_of(top), shared, after, len(names))
                )
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
