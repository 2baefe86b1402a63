"""Workspace context on the server side: recent edits per document (dcopilot.lsp.documents) and the snippets
drawn from other open documents and edited regions (dcopilot.lsp.workspace), without a server process."""

import pytest
from dcopilot.lsp import encoding as enc
from dcopilot.lsp.documents import EDITS_KEPT, Change, Document, DocumentStore
from dcopilot.lsp.workspace import NEAR_LINES, WorkspaceContext


def numbered(n: int) -> str:
    return "".join(f"line{i}\n" for i in range(n))


def edit(line: int, text: str, end_line: int | None = None) -> Change:
    return Change(text, (line, 0), (line if end_line is None else end_line, 0))


@pytest.mark.parametrize(
    "changes,expected",
    [
        ([edit(10, "x")], [(10, 10)]),
        ([edit(10, "a\nb\n")], [(10, 12)]),  # two lines inserted: the region spans them
        ([edit(10, "x"), edit(11, "y")], [(10, 11)]),  # typing on: one region
        ([edit(10, "x"), edit(30, "y")], [(10, 10), (30, 30)]),
        ([edit(30, "y"), edit(10, "a\nb\n")], [(32, 32), (10, 12)]),  # lines inserted above shift older regions
        ([edit(30, "y"), edit(10, "", end_line=13)], [(27, 27), (10, 10)]),  # and deleted ones too
        ([edit(10, "a\nb\nc\n"), edit(10, "", end_line=13)], [(10, 10)]),  # an edit undone in place: one line
        ([edit(5 * i, "x") for i in range(EDITS_KEPT + 3)], [(5 * i, 5 * i) for i in range(3, EDITS_KEPT + 3)]),
        ([Change("whole\n")], []),  # a full-text change says nothing about where
    ],
)
def test_recent_edits(changes, expected):
    doc = Document("file:///a.py", "python", 1, numbered(60))
    for c in changes:
        doc.apply(c, enc.UTF16)
    assert doc.edits == expected


def store_with(**docs: str) -> DocumentStore:
    store = DocumentStore()
    for name, text in docs.items():
        store.open(f"file:///w/{name}.py", "python", 1, text)
    return store


HELPERS = "def frobnicate_widget(items, scale):\n    return [item * scale for item in items]\n"
UNRELATED = "import os\nprint(os.getcwd())\n"
MAIN = "items = load()\nscale = 2\nresult = frob"


def snippets_for(store: DocumentStore, uri: str, limit: int = 3, ctx: WorkspaceContext | None = None):
    doc = store.get(uri)
    assert doc is not None
    snap = doc.snapshot(doc.line_count - 1, 1000, enc.UTF16)
    return (ctx or WorkspaceContext()).snippets(store, snap, lambda u: u.rsplit("/", 1)[1], limit)


def test_other_documents_ranked_by_shared_identifiers():
    store = store_with(helpers=HELPERS, unrelated=UNRELATED, main=MAIN)
    got = snippets_for(store, "file:///w/main.py")
    assert [(s.path, s.text) for s in got] == [("helpers.py", HELPERS)]  # unrelated shares nothing
    assert snippets_for(store, "file:///w/main.py", limit=0) == ()


def test_recently_edited_regions_far_from_the_cursor_join_and_near_ones_do_not():
    far = numbered(NEAR_LINES + 60) + MAIN
    store = store_with(main=far)
    doc = store.get("file:///w/main.py")
    store.change(doc.uri, 2, [edit(3, "scaled = frobnicate_items(items, scale)\n")], enc.UTF16)
    got = snippets_for(store, doc.uri)
    assert len(got) == 1 and "frobnicate_items" in got[0].text and got[0].text.startswith("line1\n")
    store.change(doc.uri, 3, [edit(NEAR_LINES + 59, "scaled = frobnicate_items(items, scale)\n")], enc.UTF16)
    assert [s.text.count("frobnicate_items") for s in snippets_for(store, doc.uri)] == [1]  # only the far one


def test_windows_are_cut_once_per_version_and_forgotten_with_their_document():
    store = store_with(helpers=HELPERS, main=MAIN)
    ctx = WorkspaceContext()
    first = snippets_for(store, "file:///w/main.py", ctx=ctx)
    cached = ctx.windows_of(store.get("file:///w/helpers.py"), "helpers.py")
    assert snippets_for(store, "file:///w/main.py", ctx=ctx) == first
    assert ctx.windows_of(store.get("file:///w/helpers.py"), "helpers.py") is cached
    store.change("file:///w/helpers.py", 2, [Change("result = other_thing(items)\n")], enc.UTF16)
    assert ctx.windows_of(store.get("file:///w/helpers.py"), "helpers.py") is not cached  # a new version
    store.close("file:///w/helpers.py")
    assert snippets_for(store, "file:///w/main.py", ctx=ctx) == ()
    assert "file:///w/helpers.py" not in ctx._windows
