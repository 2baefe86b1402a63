"""Workspace context on the server side: the snippets drawn from other open documents and recently edited regions
(dcopilot.lsp.workspace), without a server process (the edit tracking itself: test_documents.py)."""

from dcopilot.lsp import encoding as enc
from dcopilot.lsp.documents import Change, DocumentStore
from dcopilot.lsp.workspace import NEAR_LINES, WorkspaceContext


def numbered(n: int) -> str:
    return "".join(f"line{i}\n" for i in range(n))


def edit(line: int, text: str) -> Change:
    return Change(text, (line, 0), (line, 0))


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
    windows, edited = ctx.index_of(store.get("file:///w/helpers.py"), "helpers.py")
    assert snippets_for(store, "file:///w/main.py", ctx=ctx) == first
    again = ctx.index_of(store.get("file:///w/helpers.py"), "helpers.py")
    assert again[0] is windows and again[1] is edited
    store.change("file:///w/helpers.py", 2, [Change("result = other_thing(items)\n")], enc.UTF16)
    assert ctx.index_of(store.get("file:///w/helpers.py"), "helpers.py")[0] is not windows  # a new version
    store.close("file:///w/helpers.py")
    assert snippets_for(store, "file:///w/main.py", ctx=ctx) == ()
    assert "file:///w/helpers.py" not in ctx._indexes


def test_typing_in_one_document_reindexes_no_other():
    """A keystroke changes only the cursor's document, which contributes only edited regions: the indexes of
    the others, cut once, serve every later version of it."""
    store = store_with(helpers=HELPERS, unrelated=UNRELATED, main=MAIN)
    ctx = WorkspaceContext()
    snippets_for(store, "file:///w/main.py", ctx=ctx)
    held = {uri: entry[1] for uri, entry in ctx._indexes.items()}
    assert set(held) == {"file:///w/helpers.py", "file:///w/unrelated.py"}
    for version in range(2, 6):
        store.change("file:///w/main.py", version, [Change("x", (2, 13), (2, 13))], enc.UTF16)
        assert [s.path for s in snippets_for(store, "file:///w/main.py", ctx=ctx)] == ["helpers.py"]
    assert {uri: entry[1] for uri, entry in ctx._indexes.items()} == held
    assert all(ctx._indexes[uri][1] is index for uri, index in held.items())


def test_edited_regions_of_the_cursors_document_only_from_the_snapshots_version():
    """A request ranked after its document moved on must not draw snippets from the newer text: its own
    document's edited regions count only while the document is still at the snapshot's version."""
    far = numbered(NEAR_LINES + 60) + MAIN
    store = store_with(main=far)
    doc = store.get("file:///w/main.py")
    store.change(doc.uri, 2, [edit(3, "scaled = frobnicate_items(items, scale)\n")], enc.UTF16)
    snap = doc.snapshot(doc.line_count - 1, 1000, enc.UTF16)
    ctx = WorkspaceContext()
    ranked = ctx.snippets(store, snap, lambda u: u.rsplit("/", 1)[1])
    assert len(ranked) == 1 and "frobnicate_items" in ranked[0].text
    store.change(doc.uri, 3, [edit(5, "again = frobnicate_items(items)\n")], enc.UTF16)
    assert ctx.snippets(store, snap, lambda u: u.rsplit("/", 1)[1]) == ()
