"""Context from the whole workspace for a completion: windows of the other open documents and of recently edited
regions, ranked by identifier similarity to the code around the cursor (dcopilot.engine.tasks.context), sent as the
request's snippets.

Windows of a document are cut and indexed once per version and kept until it changes or closes, so a request
costs the ranking, not re-reading every open file, and a keystroke re-indexes nothing (the cursor's document
contributes only its edited regions). Snippet text is document text: it is never logged here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from dcopilot.engine.tasks import context
from dcopilot.engine.tasks.requests import SNIPPETS, Snippet
from dcopilot.lsp.documents import Document, DocumentStore, Snapshot

MAX_DOCUMENTS = 20  # most recently used open documents searched; an editor's visible tabs are far fewer
MAX_LINES = 5_000  # lines of one document cut into windows (a huge file contributes its first part)
EDIT_PAD = 2  # lines either side of an edited region in its window
# An edited region of the cursor's own document this close to the cursor is already in the prompt's window.
NEAR_LINES = 40


class WorkspaceContext:
    def __init__(self, max_documents: int = MAX_DOCUMENTS, max_lines: int = MAX_LINES):
        self.max_documents = max_documents
        self.max_lines = max_lines
        # uri -> (version, open, path) it was built for, its windows, the windows of its edited regions
        self._indexes: dict[str, tuple[tuple[int, int, str], context.Index, context.Index]] = {}

    def forget(self, uri: str) -> None:
        self._indexes.pop(uri, None)

    def index_of(self, doc: Document, path: str) -> tuple[context.Index, context.Index]:
        """The document's windows and those of its edited regions, indexed; cut again only for a new version (or
        open, or path)."""
        key = (doc.version, doc.generation, path)
        hit = self._indexes.get(doc.uri)
        if hit is None or hit[0] != key:
            lines = list(itertools.islice(doc.lines_from(0, 1), self.max_lines))
            hit = (key, context.index(context.windows(path, lines)), context.index(self.edited(doc, path)))
            self._indexes[doc.uri] = hit
        return hit[1], hit[2]

    def edited(self, doc: Document, path: str, skip_near: int | None = None) -> list[context.Window]:
        """Windows of the document's recently edited regions (line ranges clamped to the text as it is now),
        leaving out those within NEAR_LINES of line `skip_near`."""
        out = []
        count = doc.line_count
        for first, last in doc.edits:
            first, last = min(first, count - 1), min(last, count - 1)
            if skip_near is not None and first - NEAR_LINES <= skip_near <= last + NEAR_LINES:
                continue
            lo = max(0, first - EDIT_PAD)
            hi = min(count - 1, last + EDIT_PAD, lo + context.WINDOW_LINES - 1)
            text = "".join(itertools.islice(doc.lines_from(lo, 1), hi - lo + 1))
            if text.strip():
                out.append(context.Window(path, lo, text, context.identifiers(text)))
        return out

    def snippets(
        self, store: DocumentStore, snap: Snapshot, path_of: Callable[[str], str], limit: int = SNIPPETS
    ) -> tuple[Snippet, ...]:
        """The `limit` windows of other open documents and of recently edited regions (the cursor's document's
        too, away from the cursor) most similar to the code around the cursor, best first. When the cursor's
        document has changed since `snap`, its edited regions are left out: they would be cut from newer text."""
        if limit <= 0:
            return ()
        around = context.query(snap.text, snap.offset)
        if not around:
            return ()
        cursor_line = snap.line0 + snap.text.count("\n", 0, snap.offset)
        candidates: list[context.Index] = []
        for doc in store.recent()[: self.max_documents]:
            path = path_of(doc.uri)
            if doc.uri == snap.uri:
                if (doc.version, doc.generation) == (snap.version, snap.generation):
                    candidates.append(context.index(self.edited(doc, path, skip_near=cursor_line)))
            else:
                candidates += self.index_of(doc, path)
        for uri in set(self._indexes) - {d.uri for d in store.recent()}:
            del self._indexes[uri]  # closed or dropped documents
        return context.snippets(context.rank_indexed(around, candidates, limit))
