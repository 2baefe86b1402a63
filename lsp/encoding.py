"""LSP positions <-> Python string indices, in the negotiated position encoding.

Everything behind the server speaks code-point offsets (docs/interfaces.md); this module is the only place
that knows a position's `character` counts UTF-16 code units (the LSP default), UTF-8 bytes or UTF-32 code
points. Columns are converted by encoding the line prefix once at C speed instead of walking characters, so a
10 MB minified line costs milliseconds, not seconds.

Clamping follows the LSP rules: a character past the end of its line means the end of the line, a line past
the end of the document means the end of the document, and a column that lands inside a character (half of
a surrogate pair, the middle of a UTF-8 sequence) rounds down to that character's start.
"""

from __future__ import annotations

import re

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"
SUPPORTED = (UTF8, UTF16, UTF32)

# LSP counts exactly these as line ends; str.splitlines() also splits on \x0b, \x0c, \x85, \u2028, ...
LINE_END = re.compile(r"\r\n|\r|\n")
# Lone surrogates arrive through JSON "\ud800" escapes; they cannot be encoded, so they become U+FFFD, which
# has the same length in code points, UTF-16 units (1) and WTF-8 bytes (3): no position shifts.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def choose(client_encodings: list[str] | None) -> str:
    """The first encoding in the client's preference list that we support; UTF-16 when none is offered."""
    for name in client_encodings or ():
        if name in SUPPORTED:
            return name
    return UTF16


def sanitize(text: str) -> str:
    """Replace lone surrogates (invalid in UTF-8 and UTF-16) by U+FFFD without moving any position."""
    return _LONE_SURROGATE.sub("\ufffd", text) if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    # str.isascii() is a C fast path for the common case; only non-ASCII text can hold surrogates.
    return not text.isascii() and _LONE_SURROGATE.search(text) is not None


def line_content(line: str) -> str:
    """A stored line without its terminator."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


def column_to_index(content: str, character: int, encoding: str) -> int:
    """Code-point index in `content` (a line without terminator) of an LSP `character`, clamped to the line."""
    if character <= 0:
        return 0
    if content.isascii() or encoding == UTF32:
        return min(character, len(content))
    if encoding == UTF16:
        data = content.encode("utf-16-le")
        # errors="ignore" drops a trailing half surrogate pair: a column inside a character rounds down.
        return len(data[: 2 * character].decode("utf-16-le", errors="ignore"))
    data = content.encode("utf-8")
    return len(data[:character].decode("utf-8", errors="ignore"))


def index_to_column(content: str, index: int, encoding: str) -> int:
    """LSP `character` of code-point `index` in `content`."""
    index = max(0, min(index, len(content)))
    if encoding == UTF32 or content.isascii():
        return index
    head = content[:index]
    if encoding == UTF16:
        return len(head.encode("utf-16-le")) // 2
    return len(head.encode("utf-8"))


def length(text: str, encoding: str) -> int:
    """Length of `text` in units of `encoding` (for end-of-line columns)."""
    return index_to_column(text, len(text), encoding)


def split_lines(text: str) -> list[str]:
    """Lines with their terminators; the last element never has one (it is "" after a trailing newline)."""
    lines: list[str] = []
    start = 0
    for match in LINE_END.finditer(text):
        lines.append(text[start : match.end()])
        start = match.end()
    lines.append(text[start:])
    return lines
