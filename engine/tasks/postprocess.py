"""Turning a decoded middle into a completion: pure text functions, each tested with a table.

`finish` chains them in order. All of them take and return plain strings; the only document facts they use are
the text before the cursor (`prefix`), after it (`suffix`) and the document's indentation unit.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}
# What an editor auto-inserts right of the cursor (and harmless punctuation): a rest-of-line made only of these
# still allows multi-line here, and lsp/items.py lets a suggestion that repeats it replace it.
AUTO_CLOSERS = frozenset(")]}>\"'`;,: \t")
BLOCK_OPENER_ENDINGS = (":", "{", "(", "[", "=>", " do", " then")
COMMENT_STARTS = ("#", "//", "--", "/*", "*")  # a comment line ending in ":" opens nothing
# At an opener's indent, a line that closes it (an empty body) or a next `case` (cases sharing one body).
CLOSERS_OR_CASES = (*CLOSERS, "case ", "default:")


def line_prefix_of(prefix: str) -> str:
    return prefix[prefix.rfind("\n") + 1 :]


def line_suffix_of(suffix: str) -> str:
    cut = suffix.find("\n")
    line = suffix if cut < 0 else suffix[:cut]
    return line[:-1] if line.endswith("\r") else line


def indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def closers_only(text: str) -> bool:
    return all(c in AUTO_CLOSERS for c in text)


def decide_multiline(setting: str, line_prefix: str, line_suffix: str) -> bool:
    """'auto': multi-line when the rest of the line is empty or only closers, or the cursor is at column 0
    (then the rest of the line moves down and whole lines can go above it); otherwise one line."""
    if setting == "always":
        return True
    if setting == "never":
        return False
    if setting != "auto":
        raise ValueError(f"multiline must be auto, always or never, not {setting!r}")
    return closers_only(line_suffix) or line_prefix == ""


def keeps_line_break(line_prefix: str, line_suffix: str) -> bool:
    """At column 0 with code to the right, the completion is whole lines inserted above that code, so its
    final line break belongs to it."""
    return line_prefix == "" and line_suffix.strip() != ""


def strip_fences(text: str) -> str:
    """Drop a Markdown code fence a chat model may wrap its answer in."""
    m = re.match(r"\s*```[\w+#.-]*[ \t]*\n(.*?)(\n?```\s*)?\Z", text, flags=re.S)
    return m.group(1) if m else text


def strip_prefix_echo(text: str, line_prefix: str) -> str:
    """Chat models sometimes start by repeating the line being typed; drop that repetition."""
    head = line_prefix.strip()
    if head and text.lstrip().startswith(head):
        return text.lstrip()[len(head) :]
    return text


def first_line(text: str, keep_break: bool) -> str:
    cut = text.find("\n")
    if cut < 0:
        return text
    return text[: cut + 1] if keep_break else text[:cut]


def stop_at_block_end(text: str, line_prefix: str) -> str:
    """Cut a multi-line completion where it leaves the block the cursor is in.

    The block's indent is the cursor line's. If that line (with the completion's first line) opens a block, the
    body is deeper: the completion ends at the first later line indented no deeper than the opener (a closing
    bracket line at the opener's indent is kept as the block's end). Otherwise it ends at the first later line
    indented less than the cursor line.
    """
    lines = text.split("\n")
    head = line_prefix + lines[0]
    base = len(indent_of(head).expandtabs(4))
    opens = head.rstrip().endswith(BLOCK_OPENER_ENDINGS)
    for i in range(1, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        ind = len(indent_of(line).expandtabs(4))
        if opens and ind <= base:
            if ind == base and line.strip()[0] in CLOSERS:
                return "\n".join(lines[: i + 1])
            return "\n".join(lines[:i])
        if not opens and ind < base:
            return "\n".join(lines[:i])
    return text


def opens_without_body(text: str, line_prefix: str, below: str) -> bool:
    """The completion's last line (with the text before the cursor on it) opens a block, like `try:`, `if x {` or
    `f(`, and the code below it (`below`, from the next line on) does not hold that block's body: its first
    non-blank line is no deeper than the opener and neither closes it nor is a next `case` (at the opener's
    indent). Accepted, such a line leaves half a construct: a header whose body is nowhere.
    """
    last = (line_prefix + text).split("\n")[-1]
    code = last.strip()
    if not code.endswith(BLOCK_OPENER_ENDINGS) or code.startswith(COMMENT_STARTS):
        return False
    nxt = next((ln for ln in below.split("\n") if ln.strip()), None)
    if nxt is None:  # the window ends here: nothing below to judge by
        return False
    base, depth = len(indent_of(last).expandtabs(4)), len(indent_of(nxt).expandtabs(4))
    if depth == base and nxt.strip().startswith(CLOSERS_OR_CASES):  # an empty body, or cases sharing one
        return False
    return depth <= base


def cut_at_suffix_line(text: str, suffix: str, at_line_start: bool) -> str:
    """Cut the completion before a line that repeats the next non-blank line of code after the cursor: the model
    has reached code that already follows. At column 0 the code right of the cursor is that next line, and the
    completion's own first line counts too."""
    first = 0 if at_line_start else 1
    rest = suffix.split("\n")[first:]
    target = next((ln.strip() for ln in rest if ln.strip()), None)
    if target is None:
        return text
    lines = text.split("\n")
    for i in range(first, len(lines)):
        if lines[i].strip() == target:
            return "\n".join(lines[:i]) + ("\n" if i else "")
    return text


def _open_stack(prefix: str) -> list[str]:
    """Brackets still open at the end of `prefix`, skipping quoted strings and '#' / '//' line comments."""
    stack: list[str] = []
    for line in prefix.split("\n"):
        quote = ""  # the quote character of the string being read, "" outside strings
        i = 0
        while i < len(line):
            c = line[i]
            if quote:
                if c == "\\":
                    i += 2
                    continue
                if c == quote:
                    quote = ""
            elif c in "\"'`":
                quote = c
            elif c == "#" or line.startswith("//", i):
                break
            elif c in OPENERS:
                stack.append(c)
            elif c in CLOSERS and stack and stack[-1] == CLOSERS[c]:
                stack.pop()
            i += 1
    return stack


def _closed_by(line_suffix: str) -> int:
    """How many brackets opened before the cursor the rest of the line closes."""
    depth = closed = 0
    for c in line_suffix:
        if c in OPENERS:
            depth += 1
        elif c in CLOSERS:
            if depth:
                depth -= 1
            else:
                closed += 1
    return closed


def cut_unmatched_closer(text: str, prefix: str, line_suffix: str) -> str:
    """Cut at the first closing bracket that closes nothing, neither in the completion nor before the cursor.

    Brackets that code after the cursor on the same line already closes are not the completion's to close; when
    the rest of the line is only auto-inserted closers, the completion may close them (and replaces them).
    """
    outer = _open_stack(prefix)
    if not closers_only(line_suffix):
        outer = outer[: max(0, len(outer) - _closed_by(line_suffix))]
    inner: list[str] = []
    quote = ""
    for i, c in enumerate(text):
        if quote:
            if c == quote or c == "\n":
                quote = ""
            continue
        if c in "\"'`":
            quote = c
        elif c in OPENERS:
            inner.append(c)
        elif c in CLOSERS:
            want = CLOSERS[c]
            if inner:
                if inner[-1] != want:
                    return text[:i]
                inner.pop()
            elif outer and outer[-1] == want:
                outer.pop()
            else:
                return text[:i]
    return text


def auto_closed_length(text: str, line_suffix: str) -> int:
    """How many characters after the cursor the completion should replace.

    If the completion ends with the whole rest of the line, it replaces it; if it ends with a run of closers the
    editor auto-inserted after the cursor (`foo(|)` completed as `x)`), it replaces those. 0 otherwise.
    """
    rest = line_suffix.rstrip()
    text = text.rstrip()
    if text.endswith(rest):  # an empty rest gives 0 here
        return len(rest)
    run = 0
    while run < len(rest) and rest[run] in CLOSERS:
        run += 1
    for k in range(run, 0, -1):
        if text.endswith(rest[:k]):
            return k
    return 0


def trim_suffix_overlap(text: str, suffix: str) -> str:
    """Drop the longest tail of `text` that repeats the start of `suffix`, if that tail has visible characters
    and starts at a line start of the completion (so what remains still ends at a clean boundary)."""
    for k in range(min(len(text), len(suffix)), 0, -1):
        if text.endswith(suffix[:k]) and suffix[:k].strip():
            head = text[:-k]
            if head == "" or head.endswith("\n"):
                return head
    return text


def detect_indent(text: str) -> str:
    """The document's indentation unit: '\\t', or the most common step between space-indented lines."""
    tabs = spaces = 0
    steps: Counter[int] = Counter()
    prev = 0
    for line in text.split("\n"):
        if not line.strip():
            continue
        ind = indent_of(line)
        if ind.startswith("\t"):
            tabs += 1
        elif ind:
            spaces += 1
        width = len(ind.expandtabs(4))
        if width > prev and not ind.startswith("\t"):
            steps[width - prev] += 1
        prev = width
    if tabs > spaces:
        return "\t"
    if not steps:
        return "    "
    return " " * steps.most_common(1)[0][0]


def _unit_of(lines: list[str]) -> int:
    """The indent step of space-indented lines; 0 when there is none above 1 (alignment, not levels)."""
    widths = [len(indent_of(ln).expandtabs(4)) for ln in lines if ln.strip() and not indent_of(ln).startswith("\t")]
    step = math.gcd(*widths)
    return step if step > 1 else 0


def normalize_indent(text: str, unit: str, line_prefix: str) -> str:
    """Re-indent lines after the first to the document's unit: tabs <-> spaces, and a different space step
    (model wrote 4, document uses 2) rescaled level by level. The first line continues the cursor line as is."""
    lines = text.split("\n")
    if len(lines) < 2:
        return text
    body = lines[1:]
    if unit == "\t":
        step = _unit_of(body) or 4
        out = []
        for ln in body:
            ind = indent_of(ln)
            width = len(ind.expandtabs(4))
            if "\t" in ind and " " not in ind:
                out.append(ln)
                continue
            out.append("\t" * (width // step) + " " * (width % step) + ln[len(ind) :])
        return "\n".join([lines[0], *out])
    doc_step = len(unit)
    model_step = _unit_of(body)
    base = len(indent_of(line_prefix).expandtabs(doc_step))
    out = []
    for ln in body:
        ind = indent_of(ln)
        width = len(ind.expandtabs(doc_step))
        if model_step and model_step != doc_step and width % model_step == 0 and base % model_step == 0:
            width = width // model_step * doc_step if width >= base else width
        out.append(" " * width + ln[len(ind) :] if ln.strip() else ln)
    return "\n".join([lines[0], *out])


def trim_trailing(text: str, keep_break: bool) -> str:
    """No trailing blank lines or spaces; keep exactly one final line break when the completion is whole lines
    inserted above existing code."""
    stripped = text.rstrip()
    if keep_break and stripped:
        return stripped + "\n"
    return stripped


def is_repetitive(text: str, min_len: int = 12) -> bool:
    """A short pattern repeated three or more times (looping output), or the same line three times in a row."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    for i in range(len(lines) - 2):
        if lines[i] == lines[i + 1] == lines[i + 2]:
            return True
    s = text.strip()
    if len(s) < min_len:
        return False
    return any(all(s[i] == s[i % p] for i in range(len(s))) for p in range(1, len(s) // 3 + 1))


@dataclass(frozen=True)
class Context:
    prefix: str  # window text before the cursor
    suffix: str  # window text after the cursor
    multiline: bool
    indent: str  # document indentation unit
    chat: bool = False  # the model answers in a chat turn (fences, echoes possible)

    @property
    def line_prefix(self) -> str:
        return line_prefix_of(self.prefix)

    @property
    def line_suffix(self) -> str:
        return line_suffix_of(self.suffix)


@dataclass(frozen=True)
class Finished:
    text: str  # to insert (line breaks in the document's style)
    replace: int  # characters after the cursor it replaces (auto-closed brackets, the rest of the line)
    reject: str | None = None  # why the candidate is dropped ("empty", "repetitive", "no body"), None when kept


def finish(raw: str, ctx: Context) -> Finished:
    """All post-processing in order; the result either has text or says why it was rejected."""
    crlf = "\r\n" in ctx.prefix or "\r\n" in ctx.suffix
    text = raw.replace("\r\n", "\n")
    # The prefix is read only for its last line and its brackets, which a \r before each \n does not change.
    prefix, suffix = ctx.prefix, ctx.suffix.replace("\r\n", "\n")
    lp, ls = line_prefix_of(prefix), line_suffix_of(suffix)
    keep_break = keeps_line_break(lp, ls)
    if ctx.chat:
        text = strip_prefix_echo(strip_fences(text), lp)
    if ctx.multiline:
        text = stop_at_block_end(text, lp)
        text = cut_at_suffix_line(text, suffix, at_line_start=lp == "")
    else:
        text = first_line(text, keep_break)
    text = cut_unmatched_closer(text, prefix, ls)
    # At column 0 with code to the right, whole lines go above that code, which stays.
    replace = 0 if keep_break else auto_closed_length(text, ls)
    if replace and text.strip() == ls[:replace].strip():
        return Finished("", 0, "empty")  # it only repeats what is already after the cursor
    text = trim_suffix_overlap(text, suffix[replace:])
    text = normalize_indent(text, ctx.indent, lp)
    text = trim_trailing(text, keep_break)
    if not text.strip():
        return Finished("", 0, "empty")
    if is_repetitive(text):
        return Finished("", 0, "repetitive")
    # The text ends its line when it is whole lines above the code right of the cursor, or when nothing follows it
    # on its line: either way the code after it is the code below it (a blank rest of the line is skipped).
    rest = suffix[replace:]
    ends_line = keep_break or not line_suffix_of(rest).strip()
    if ends_line and opens_without_body(text.removesuffix("\n"), lp, rest):
        return Finished("", 0, "no body")
    if crlf:
        text = text.replace("\n", "\r\n")
    return Finished(text, replace)
