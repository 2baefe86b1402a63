"""Versioned store of open documents: incremental edits, size caps, snapshots.

A document is a list of lines with their terminators, so an incremental edit touches only the lines it spans
(a pointer memmove, not a copy of the text) and a position finds its line in O(1). This store, not pygls'
workspace, is the only copy of the text: `lsp.server` replaces pygls' built-in didOpen/didChange/didClose.

Requests run on a `Snapshot`: an immutable excerpt around the cursor (the model never sees more than a few
thousand tokens), its document version, and enough to map offsets back to positions. Snapshots of a 10 MB
document cost the excerpt, not the document. Nothing here raises on bad input: out-of-order or unknown
documents and stale versions are refused with a reason the server logs.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from lsp import encoding as enc

# Each side of the cursor; the engine windows far less than this (context_tokens x ~4 chars).
EXCERPT_CHARS = 32_768


@dataclass(frozen=True, slots=True)
class Change:
    """One content change: `start`/`end` are (line, character) in the document's encoding; None = full text."""

    text: str
    start: tuple[int, int] | None = None
    end: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable excerpt of one document version; `offset` is the cursor as a code-point index of `text`."""

    uri: str
    version: int
    language_id: str
    text: str
    offset: int
    line0: int  # document line of text[0]
    col0: int  # column of text[0] on line0, in `encoding` units (non-zero only when a huge line is cut)
    encoding: str

    def position(self, offset: int) -> tuple[int, int]:
        """(line, character) of a code-point offset of `text`, in the snapshot's encoding."""
        offset = max(0, min(offset, len(self.text)))
        head = self.text[:offset]
        lines = enc.split_lines(head)
        line = self.line0 + len(lines) - 1
        base = self.col0 if len(lines) == 1 else 0
        return line, base + enc.index_to_column(lines[-1], len(lines[-1]), self.encoding)

    def index(self, line: int, column: int) -> int | None:
        """Offset of document (line, code-point column), as clamped by `Document.index`; None outside the excerpt."""
        lines = enc.split_lines(self.text)
        rel = line - self.line0
        if rel < 0 or rel >= len(lines) or (rel == 0 and self.col0):
            return None
        return sum(map(len, lines[:rel])) + min(column, len(enc.line_content(lines[rel])))

    def line_end(self, offset: int) -> int:
        """Offset of the end of the line holding `offset` (before its terminator)."""
        match = enc.LINE_END.search(self.text, offset)
        return match.start() if match else len(self.text)


class Document:
    """Mutable text of one open document."""

    def __init__(self, uri: str, language_id: str, version: int, text: str):
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.lines = enc.split_lines(text)
        self.size = len(text)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def index(self, line: int, character: int, encoding: str) -> tuple[int, int]:
        """Clamped (line, code-point column) of an LSP position."""
        if line < 0:
            return 0, 0
        if line >= len(self.lines):
            last = len(self.lines) - 1
            return last, len(enc.line_content(self.lines[last]))
        return line, enc.column_to_index(enc.line_content(self.lines[line]), character, encoding)

    def apply(self, change: Change, encoding: str) -> None:
        if change.start is None or change.end is None:
            self.lines = enc.split_lines(change.text)
            self.size = len(change.text)
            return
        start = self.index(*change.start, encoding)
        end = self.index(*change.end, encoding)
        if end < start:
            start, end = end, start
        first, last = start[0], end[0]
        # Re-split the line before when its bare "\r" could join a "\n" the edit puts first into one CRLF. (The
        # region always ends with its last line's own terminator, so nothing joins the line after it.)
        if first > 0 and self.lines[first - 1].endswith("\r"):
            first -= 1
        old = self.lines[first : last + 1]
        head = "".join(old[: start[0] - first]) + self.lines[start[0]][: start[1]]
        tail = self.lines[end[0]][end[1] :]
        region = head + change.text + tail
        pieces = enc.split_lines(region)
        if last < len(self.lines) - 1:
            pieces.pop()  # the region ended with a terminator; its trailing "" is not a line
        self.lines[first : last + 1] = pieces
        self.size += len(region) - sum(map(len, old))

    def snapshot(self, line: int, character: int, encoding: str) -> Snapshot:
        line, col = self.index(line, character, encoding)
        current = self.lines[line]
        # Most lines fit whole; a huge (minified) line is cut around the cursor.
        cut = max(0, col - EXCERPT_CHARS)
        before = [current[cut:col]]
        budget = EXCERPT_CHARS - len(before[0])
        first = line
        while first > 0 and budget > 0 and cut == 0:
            first -= 1
            before.append(self.lines[first])
            budget -= len(self.lines[first])
        after = [current[col : col + EXCERPT_CHARS]]
        budget = EXCERPT_CHARS - len(after[0])
        nxt = line + 1
        while nxt < len(self.lines) and budget > 0 and len(current) - col <= EXCERPT_CHARS:
            after.append(self.lines[nxt])
            budget -= len(self.lines[nxt])
            nxt += 1
        prefix = "".join(reversed(before))
        col0 = enc.index_to_column(enc.line_content(current), cut, encoding) if cut else 0
        return Snapshot(
            uri=self.uri,
            version=self.version,
            language_id=self.language_id,
            text=prefix + "".join(after),
            offset=len(prefix),
            line0=first,
            col0=col0,
            encoding=encoding,
        )


class DocumentStore:
    """Open documents by URI, with a per-document size cap and a bound on how many are kept."""

    def __init__(self, max_chars: int = 16 * 1024 * 1024, max_documents: int = 512):
        self.max_chars = max_chars
        self.max_documents = max_documents
        self._docs: OrderedDict[str, Document] = OrderedDict()

    def __contains__(self, uri: str) -> bool:
        return uri in self._docs

    def __len__(self) -> int:
        return len(self._docs)

    def get(self, uri: str) -> Document | None:
        doc = self._docs.get(uri)
        if doc is not None:
            self._docs.move_to_end(uri)
        return doc

    def version(self, uri: str) -> int | None:
        doc = self._docs.get(uri)
        return None if doc is None else doc.version

    def open(self, uri: str, language_id: str, version: int, text: str) -> str | None:
        """Open (or reopen) a document; returns a reason when it is refused."""
        self._docs.pop(uri, None)
        if len(text) > self.max_chars:
            return f"document is {len(text)} chars, over the {self.max_chars} cap; not tracked"
        self._docs[uri] = Document(uri, language_id, version, enc.sanitize(text))
        while len(self._docs) > self.max_documents:
            self._docs.popitem(last=False)
        return None

    def change(self, uri: str, version: int, changes: list[Change], encoding: str) -> str | None:
        """Apply changes in order; returns a note for the log when they are refused (the document is then left as
        it was) or when an unknown document is adopted from a full-text change."""
        doc = self._docs.get(uri)
        if doc is None:
            full = [i for i, c in enumerate(changes) if c.start is None]
            if not full:
                return "change for a document that is not open; ignored"
            # A full-text change needs no history: adopt the document we were never told about.
            refused = self.open(uri, "", version - 1, changes[full[-1]].text)
            applied = refused or self.change(uri, version, changes[full[-1] + 1 :], encoding)
            return applied or "change for a document that was never opened: adopted from its full text"
        if version <= doc.version:
            return f"stale change (version {version} <= {doc.version}); ignored"
        for change in changes:
            doc.apply(Change(enc.sanitize(change.text), change.start, change.end), encoding)
        doc.version = version
        self._docs.move_to_end(uri)
        if doc.size > self.max_chars:
            del self._docs[uri]
            return f"document grew to {doc.size} chars, over the {self.max_chars} cap; no longer tracked"
        return None

    def close(self, uri: str) -> bool:
        return self._docs.pop(uri, None) is not None
