"""Versioned store of open documents: incremental edits, size caps, snapshots.

A document is stored as chunks of whole lines (about CHUNK_CHARS each) with a count of line ends per chunk:
memory stays close to the text's own size whatever the line lengths (one Python string per line cost ~50
bytes of overhead per line, 37 times the text for 2-character lines), an incremental edit re-cuts only the
chunks it touches, and a position finds its chunk by bisection. This store, not pygls' workspace, is the only
copy of the text: `dcopilot.lsp.server` replaces pygls' built-in didOpen/didChange/didClose.

Requests run on a `Snapshot`: an immutable excerpt around the cursor (the model never sees more than a few
thousand tokens), its document version and open generation, and enough to map offsets back to positions.
Snapshots of a 10 MB document cost the excerpt, not the document. Nothing here raises on bad input:
out-of-order or unknown documents and stale versions are refused with a reason the server logs. Memory is
bounded per document (max_chars) and across documents (max_total_chars: the least recently used go first).
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from dcopilot.lsp import encoding as enc

# Each side of the cursor; the engine windows far less than this (context_tokens x ~4 chars).
EXCERPT_CHARS = 32_768
CHUNK_CHARS = 8_192  # a chunk is cut at the first line end past this; a longer line is one chunk
EDITS_KEPT = 8  # recently edited regions remembered per document (dcopilot.lsp.workspace draws snippets from them)
EDIT_MERGE_LINES = 3  # an edit this close to the last region extends it (typing a block is one region, not many)
# Each open gets a new generation: a document closed and reopened at the same version is another document.
_generations = itertools.count(1)


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
    generation: int = 0  # the open this excerpt belongs to (Document.generation)
    cut: int = 0  # code-point column of text[0] on line0 (col0 in code points)

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
        if rel < 0 or rel >= len(lines):
            return None
        if rel == 0 and (self.col0 or self.cut):  # a huge first line, cut at code point `cut`
            if column < self.cut:
                return None
            return min(column - self.cut, len(enc.line_content(lines[0])))
        return sum(map(len, lines[:rel])) + min(column, len(enc.line_content(lines[rel])))

    def line_end(self, offset: int) -> int:
        """Offset of the end of the line holding `offset` (before its terminator)."""
        match = enc.LINE_END.search(self.text, offset)
        return match.start() if match else len(self.text)


def _cut(text: str) -> list[str]:
    """`text` in chunks of whole lines, each cut at the first line end past CHUNK_CHARS ("\\r\\n" never split)."""
    if len(text) <= CHUNK_CHARS:
        return [text]
    chunks = []
    pos = 0
    while len(text) - pos > CHUNK_CHARS:
        # From one before the target: a CR there matches with the LF after it as one line end.
        found = enc.LINE_END.search(text, pos + CHUNK_CHARS - 1)
        if found is None or found.end() == len(text):
            break
        chunks.append(text[pos : found.end()])
        pos = found.end()
    chunks.append(text[pos:])
    return chunks


def _line_ends(chunk: str) -> int:
    return chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")


class Document:
    """Mutable text of one open document, in chunks of whole lines."""

    def __init__(self, uri: str, language_id: str, version: int, text: str):
        self.uri = uri
        self.language_id = language_id
        self.version = version
        self.generation = next(_generations)
        self.edits: list[tuple[int, int]] = []  # recently edited (first, last) line ranges, most recent last
        self._set(text)

    def _set(self, text: str) -> None:
        self._chunks = _cut(text)
        self._ends = [_line_ends(c) for c in self._chunks]
        self.size = len(text)
        self._index: tuple[list[int], list[int]] | None = None
        self._split: tuple[int, list[str]] | None = None

    def _starts(self) -> tuple[list[int], list[int]]:
        """(first line, first character) of each chunk; rebuilt after an edit, in O(chunks)."""
        if self._index is None:
            lines = list(itertools.accumulate(self._ends, initial=0))[:-1]
            chars = list(itertools.accumulate(map(len, self._chunks), initial=0))[:-1]
            self._index = (lines, chars)
        return self._index

    def _chunk_lines(self, c: int) -> list[str]:
        """The lines of chunk `c` with their terminators (the last chunk's last line may be "")."""
        if self._split is None or self._split[0] != c:
            lines = enc.split_lines(self._chunks[c])
            if c < len(self._chunks) - 1:
                lines.pop()  # the chunk ends with a line end: its trailing "" is not a line
            self._split = (c, lines)
        return self._split[1]

    def _locate(self, line: int) -> tuple[int, int]:
        """(chunk, line within it) of a document line in range."""
        first_lines = self._starts()[0]
        c = bisect_right(first_lines, line) - 1
        return c, line - first_lines[c]

    @property
    def line_count(self) -> int:
        return sum(self._ends) + 1

    def line(self, line: int) -> str:
        """Line `line` (0 <= line < line_count) with its terminator."""
        c, k = self._locate(line)
        return self._chunk_lines(c)[k]

    def lines_from(self, line: int, step: int) -> Iterator[str]:
        """Lines from `line` going forward (step 1) or backward (step -1), each chunk split once."""
        c, k = self._locate(line)
        while 0 <= c < len(self._chunks):
            lines = self._chunk_lines(c)
            while 0 <= k < len(lines):
                yield lines[k]
                k += step
            c += step
            if 0 <= c < len(self._chunks):
                k = 0 if step > 0 else len(self._chunk_lines(c)) - 1

    @property
    def lines(self) -> list[str]:
        """Every line with its terminator (a copy: costs the whole text)."""
        return enc.split_lines(self.text)

    @property
    def text(self) -> str:
        return "".join(self._chunks)

    def index(self, line: int, character: int, encoding: str) -> tuple[int, int]:
        """Clamped (line, code-point column) of an LSP position."""
        if line < 0:
            return 0, 0
        count = self.line_count
        if line >= count:
            return count - 1, len(enc.line_content(self.line(count - 1)))
        return line, enc.column_to_index(enc.line_content(self.line(line)), character, encoding)

    def _offset(self, line: int, column: int) -> int:
        """Character offset in the whole text of an in-range (line, code-point column)."""
        c, k = self._locate(line)
        return self._starts()[1][c] + sum(map(len, self._chunk_lines(c)[:k])) + column

    def apply(self, change: Change, encoding: str) -> None:
        if change.start is None or change.end is None:
            self._set(change.text)
            return
        start = self.index(*change.start, encoding)
        end = self.index(*change.end, encoding)
        if end < start:
            start, end = end, start
        s, e = self._offset(*start), self._offset(*end)
        # The chunks spanned plus one neighbour each side: a "\r" and a "\n" brought together by the edit, or
        # a small chunk left by an earlier one, are re-cut with the rest.
        a = max(0, self._locate(start[0])[0] - 1)
        b = min(len(self._chunks) - 1, self._locate(end[0])[0] + 1)
        base = self._starts()[1][a]
        region = "".join(self._chunks[a : b + 1])
        self._edited(start[0], end[0], _line_ends(change.text))
        pieces = _cut(region[: s - base] + change.text + region[e - base :])
        self._chunks[a : b + 1] = pieces
        self._ends[a : b + 1] = [_line_ends(p) for p in pieces]
        self.size += len(change.text) - (e - s)
        self._index = None
        self._split = None

    def _edited(self, first: int, last: int, new_ends: int) -> None:
        """Record that lines first..last became new_ends + 1 lines: regions below shift with the lines, a region
        within EDIT_MERGE_LINES of the most recent one extends it, the oldest beyond EDITS_KEPT go."""
        shift = new_ends - (last - first)
        now = (first, first + new_ends)
        kept = []
        for a, b in self.edits:
            if a > last:
                a, b = a + shift, b + shift
            elif b >= first:  # overlaps the edit: clamp to what is left of it
                b = max(a, min(b + shift, now[1]))
            kept.append((a, b))
        if kept and kept[-1][0] - EDIT_MERGE_LINES <= now[1] and now[0] <= kept[-1][1] + EDIT_MERGE_LINES:
            a, b = kept.pop()
            now = (min(a, now[0]), max(b, now[1]))
        kept.append(now)
        self.edits = kept[-EDITS_KEPT:]

    def snapshot(self, line: int, character: int, encoding: str) -> Snapshot:
        line, col = self.index(line, character, encoding)
        current = self.line(line)
        # Most lines fit whole; a huge (minified) line is cut around the cursor.
        cut = max(0, col - EXCERPT_CHARS)
        before = [current[cut:col]]
        budget = EXCERPT_CHARS - len(before[0])
        first = line
        if cut == 0 and line > 0:
            for previous in self.lines_from(line - 1, -1):
                if budget <= 0:
                    break
                first -= 1
                before.append(previous)
                budget -= len(previous)
        after = [current[col : col + EXCERPT_CHARS]]
        budget = EXCERPT_CHARS - len(after[0])
        if len(current) - col <= EXCERPT_CHARS and line + 1 < self.line_count:
            for following in self.lines_from(line + 1, 1):
                if budget <= 0:
                    break
                after.append(following)
                budget -= len(following)
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
            generation=self.generation,
            cut=cut,
        )


class DocumentStore:
    """Open documents by URI, with a per-document size cap and bounds on how many are kept and on their total
    size (the least recently used are dropped first; a request for one of them finds it not open)."""

    def __init__(self, max_chars: int = 16 * 1024 * 1024, max_documents: int = 512, max_total_chars: int | None = None):
        self.max_chars = max_chars
        self.max_documents = max_documents
        self.max_total_chars = 4 * max_chars if max_total_chars is None else max_total_chars
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

    def recent(self) -> list[Document]:
        """Open documents, most recently used first (the order itself is left as it is)."""
        return list(reversed(self._docs.values()))

    def version(self, uri: str) -> int | None:
        doc = self._docs.get(uri)
        return None if doc is None else doc.version

    def generation(self, uri: str) -> int | None:
        """Which open of `uri` is current (a reopen at the same version is a different document)."""
        doc = self._docs.get(uri)
        return None if doc is None else doc.generation

    def total_chars(self) -> int:
        return sum(doc.size for doc in self._docs.values())

    def _trim(self, keep: str) -> str | None:
        """Drop least recently used documents (never `keep`) until the count and total size fit."""
        dropped = []
        while len(self._docs) > self.max_documents or (
            len(self._docs) > 1 and self.total_chars() > self.max_total_chars
        ):
            uri = next(u for u in self._docs if u != keep)
            del self._docs[uri]
            dropped.append(uri)
        if dropped:
            limits = f"{self.max_documents} documents or {self.max_total_chars} chars in all"
            return f"{len(dropped)} least recently used documents dropped (over {limits})"
        return None

    def open(self, uri: str, language_id: str, version: int, text: str) -> str | None:
        """Open (or reopen) a document; returns a reason when it is refused."""
        self._docs.pop(uri, None)
        if len(text) > self.max_chars:
            return f"document is {len(text)} chars, over the {self.max_chars} cap; not tracked"
        self._docs[uri] = Document(uri, language_id, version, enc.sanitize(text))
        self._trim(keep=uri)
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
        return self._trim(keep=uri)

    def close(self, uri: str) -> bool:
        return self._docs.pop(uri, None) is not None
