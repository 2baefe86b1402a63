"""The document store (lsp/documents.py) through its public behaviour: edits against a plain reference that
walks the text character by character, adoption of unknown documents, versions and generations, the size, count
and total size bounds, chunks (cut and re-cut with a small CHUNK_CHARS against a plain string), and snapshots
(excerpts, positions and offsets in each encoding, cut huge lines)."""

import itertools
import random

import pytest
from dcopilot.lsp import documents
from dcopilot.lsp import encoding as enc
from dcopilot.lsp.documents import EDITS_KEPT, Change, Document, DocumentStore
from hypothesis import given
from hypothesis import strategies as st

from unit_width import units

# Survivors of `python scripts/mutation.py lsp/documents.py` that cannot change behaviour: (function, mutated
# line, why). The runner marks a survivor equivalent only when it is listed here.
EQUIVALENT_MUTANTS = [
    ("apply", "if end <= start:", "swapping equal positions changes nothing"),
    (
        "snapshot",
        "col0 = enc.index_to_column(enc.line_content(current), cut, encoding) if (cut) or True else 0",
        "column 0 is column 0 in every encoding",
    ),
    (
        "change",
        'refused = self.open(uri, "", version - 2, changes[full[-1]].text)',
        "the adopted document gets the change's version right after; any older version lets that change through",
    ),
    (
        "index",
        "if rel == 0 and (self.col0 and self.cut):  # a huge first line, cut at code point `cut`",
        "col0 is non-zero exactly when cut is",
    ),
    (
        "_starts",
        "chars = list(itertools.accumulate(map(len, self._chunks), initial=1))[:-1]",
        "every chunk start moves by one alike, and apply only uses their differences",
    ),
    ("_cut", "if len(text) < CHUNK_CHARS:", "a text of exactly CHUNK_CHARS skips the loop: one chunk either way"),
    (
        "_cut",
        "while len(text) + pos > CHUNK_CHARS:",
        "with CHUNK_CHARS or less left the search starts at the last character: a match there ends the text",
    ),
    (
        "_cut",
        "while len(text) - pos >= CHUNK_CHARS:",
        "with CHUNK_CHARS left the search starts at the last character: a match there ends the text",
    ),
    ("_chunk_lines", "if self._split is None or self._split[1] != c:", "the one-chunk cache is skipped: same lines"),
    (
        "lines_from",
        "if 0 <= c <= len(self._chunks):",
        "c reaches len(chunks) only going forward, where k = 0 reads nothing and the loop then ends",
    ),
    ("lines_from", "k = 0 if step >= 0 else len(self._chunk_lines(c)) - 1", "step is 1 or -1, never 0"),
    (
        "apply",
        "a = max(0, self._locate(start[0])[0] - 2)",
        "re-cutting one more unchanged chunk moves chunk edges only, never the text or its lines",
    ),
    (
        "apply",
        "b = min(len(self._chunks) + 1, self._locate(end[0])[0] + 1)",
        "a slice end past the last chunk is the last chunk",
    ),
    (
        "apply",
        "b = min(len(self._chunks) - 1, self._locate(end[0])[0] + 2)",
        "re-cutting one more unchanged chunk moves chunk edges only, never the text or its lines",
    ),
    (
        "snapshot",
        "if cut == 0 or line > 0:",
        "a cut line fills the budget before the cursor: the loop stops before taking a line",
    ),
    ("snapshot", "if cut == 0 and line >= 0:", "lines before line 0 are none: lines_from(-1, -1) yields nothing"),
    (
        "snapshot",
        "if len(current) - col <= EXCERPT_CHARS or line + 1 < self.line_count:",
        "a cut rest fills the budget after the cursor, and lines_from(line_count, 1) yields nothing",
    ),
    (
        "snapshot",
        "if len(current) - col < EXCERPT_CHARS and line + 1 < self.line_count:",
        "a rest of exactly EXCERPT_CHARS leaves no budget: the loop stops before taking a line",
    ),
    (
        "snapshot",
        "if len(current) - col <= EXCERPT_CHARS and line - 1 < self.line_count:",
        "lines_from(line_count, 1) yields nothing",
    ),
    (
        "snapshot",
        "if len(current) - col <= EXCERPT_CHARS and line + 1 <= self.line_count:",
        "lines_from(line_count, 1) yields nothing",
    ),
    ("_trim", "dropped.append(None)", "only how many were dropped is used"),
    (
        "open",
        "self._trim(keep=None)",
        "the kept document is the most recent, so the last the loop would reach; it stops with one document left",
    ),
    (
        "change",
        "return self._trim(keep=None)",
        "the kept document is the most recent, so the last the loop would reach; it stops with one document left",
    ),
]

ENCODINGS = ("utf-8", "utf-16", "utf-32")


def ref_lines(text: str) -> list[tuple[int, int]]:
    """(start, end of content) of each line; LSP line ends are \\r\\n, \\r and \\n only."""
    out, start, i = [], 0, 0
    while i < len(text):
        if text[i] in "\r\n":
            end = i
            i += 2 if text[i : i + 2] == "\r\n" else 1
            out.append((start, end))
            start = i
        else:
            i += 1
    out.append((start, len(text)))
    return out


def ref_offset(text: str, line: int, character: int, encoding: str) -> int:
    lines = ref_lines(text)
    if line < 0:
        return 0
    if line >= len(lines):
        return len(text)
    start, end = lines[line]
    col = 0
    for i in range(start, end):
        col += units(text[i], encoding)
        if col > character:
            return i
    return end


def ref_position(text: str, offset: int, encoding: str) -> tuple[int, int]:
    for n, (start, end) in enumerate(ref_lines(text)):
        if offset <= end:
            return n, sum(units(c, encoding) for c in text[start:offset])
    raise AssertionError("offset past the text")


def ref_apply(text: str, change: Change, encoding: str) -> str:
    if change.start is None:
        return change.text
    a, b = ref_offset(text, *change.start, encoding), ref_offset(text, *change.end, encoding)
    a, b = min(a, b), max(a, b)
    return text[:a] + change.text + text[b:]


PIECES = ["a", "bc", "😀", "数", "é", "\n", "\r\n", "\r", "\t", " "]
TEXT = st.lists(st.sampled_from(PIECES), max_size=20).map("".join)
POSITION = st.tuples(st.integers(-1, 6), st.integers(0, 9))
CHANGE = st.one_of(
    st.builds(Change, TEXT, POSITION, POSITION),
    st.builds(Change, TEXT, POSITION, POSITION),
    st.builds(Change, TEXT),
)


@given(TEXT, st.lists(st.lists(CHANGE, min_size=1, max_size=3), max_size=6), st.sampled_from(ENCODINGS))
def test_edits_match_the_reference(text, batches, encoding):
    cap = 30  # the store's size count is checked too: a document over the cap is dropped, with its size
    store = DocumentStore(max_chars=cap)
    text = text[:cap]
    assert store.open("file:///a", "python", 1, text) is None
    for version, batch in enumerate(batches, start=2):
        for change in batch:
            text = ref_apply(text, change, encoding)
        note = store.change("file:///a", version, batch, encoding)
        if len(text) > cap:
            assert note == f"document grew to {len(text)} chars, over the {cap} cap; no longer tracked"
            assert "file:///a" not in store
            text = text[:cap]
            store.open("file:///a", "python", version, text)
            continue
        assert note is None
        assert store.get("file:///a").text == text
        assert store.version("file:///a") == version


def test_a_line_break_joining_a_bare_cr_makes_one_crlf_line_end():
    store = DocumentStore()
    store.open("u", "py", 1, "a\rb")
    store.change("u", 2, [Change("\n", (1, 0), (1, 0))], "utf-16")  # "a\r" + "\n" + "b": the \r\n is one line end
    store.change("u", 3, [Change("X", (1, 1), (1, 1))], "utf-16")
    assert store.get("u").text == "a\r\nbX"
    store.open("v", "py", 1, "a\n\nb")
    store.change("v", 2, [Change("\r", (0, 1), (0, 1))], "utf-16")  # "a\r\n" + "\nb"
    store.change("v", 3, [Change("Y", (1, 0), (1, 0))], "utf-16")
    assert store.get("v").text == "a\r\nY\nb"


def test_reversed_ranges_are_put_in_order():
    store = DocumentStore()
    store.open("u", "py", 1, "hello\nworld\n")
    store.change("u", 2, [Change("", (1, 3), (0, 2))], "utf-16")
    assert store.get("u").text == "held\n"


def test_an_unknown_document_is_adopted_from_a_full_text_change():
    store = DocumentStore()
    changes = [Change("ignored", (0, 0), (0, 0)), Change("hello\nworld"), Change("!", (1, 5), (1, 5))]
    note = store.change("file:///new", 7, changes, "utf-16")
    assert note == "change for a document that was never opened: adopted from its full text"
    assert store.get("file:///new").text == "hello\nworld!" and store.version("file:///new") == 7
    # the last full text wins
    store.change("file:///n2", 3, [Change("one"), Change("two")], "utf-16")
    assert store.get("file:///n2").text == "two" and store.version("file:///n2") == 3
    # a later change then applies as usual
    assert store.change("file:///new", 8, [Change("?", (0, 0), (0, 0))], "utf-16") is None
    assert store.get("file:///new").text == "?hello\nworld!"


def test_an_unknown_document_without_a_full_text_is_ignored():
    store = DocumentStore()
    note = store.change("file:///x", 2, [Change("z", (0, 0), (0, 0))], "utf-16")
    assert note == "change for a document that is not open; ignored"
    assert "file:///x" not in store and store.get("file:///x") is None and store.version("file:///x") is None


def test_an_unknown_document_too_large_to_adopt_is_refused():
    store = DocumentStore(max_chars=5)
    note = store.change("file:///x", 2, [Change("0123456789")], "utf-16")
    assert note == "document is 10 chars, over the 5 cap; not tracked"
    assert "file:///x" not in store


def test_stale_changes_leave_the_document_as_it_was():
    store = DocumentStore()
    store.open("u", "py", 3, "abc")
    assert store.change("u", 3, [Change("x")], "utf-16") == "stale change (version 3 <= 3); ignored"
    assert store.change("u", 2, [Change("x")], "utf-16") == "stale change (version 2 <= 3); ignored"
    assert store.get("u").text == "abc" and store.version("u") == 3
    assert store.change("u", 4, [Change("x")], "utf-16") is None and store.version("u") == 4


def test_size_caps():
    store = DocumentStore(max_chars=10)
    assert store.open("a", "py", 1, "x" * 10) is None  # exactly the cap is fine
    assert store.open("a", "py", 2, "x" * 11) == "document is 11 chars, over the 10 cap; not tracked"
    assert "a" not in store  # the older text is not kept either
    store.open("b", "py", 1, "12345")
    assert store.change("b", 2, [Change("67890", (0, 5), (0, 5))], "utf-16") is None  # grows to exactly 10
    assert store.change("b", 3, [Change("123", (0, 2), (0, 4))], "utf-16") == (  # 10 - 2 + 3
        "document grew to 11 chars, over the 10 cap; no longer tracked"
    )
    assert "b" not in store


def test_size_cap_counts_replaced_text():
    store = DocumentStore(max_chars=10)
    store.open("b", "py", 1, "0123456789")
    assert store.change("b", 2, [Change("ab", (0, 2), (0, 4))], "utf-16") is None  # replaces 2 by 2
    assert store.change("b", 3, [Change("abc", (0, 0), (0, 2))], "utf-16") == (
        "document grew to 11 chars, over the 10 cap; no longer tracked"
    )
    assert "b" not in store and len(store) == 0


def test_lru_bound_and_use_order():
    store = DocumentStore(max_documents=2)
    store.open("a", "py", 1, "")
    store.open("b", "py", 1, "")
    store.get("a")  # used: b is now the least recent
    store.open("c", "py", 1, "")
    assert ("a" in store, "b" in store, "c" in store, len(store)) == (True, False, True, 2)
    store.change("a", 2, [Change("x")], "utf-16")  # a change is a use too
    store.open("d", "py", 1, "")
    assert ("a" in store, "c" in store) == (True, False)


def test_close_and_reopen():
    store = DocumentStore()
    store.open("u", "py", 1, "abc")
    assert store.close("u") is True and "u" not in store
    assert store.close("u") is False
    store.open("u", "rust", 5, "new\ud800")
    assert store.get("u").text == "new\ufffd" and store.version("u") == 5 and store.get("u").language_id == "rust"


def test_lone_surrogates_in_changes_are_replaced():
    store = DocumentStore()
    store.open("u", "py", 1, "ab")
    store.change("u", 2, [Change("\udc00", (0, 1), (0, 1))], "utf-16")
    assert store.get("u").text == "a\ufffdb"


# -- snapshots ---------------------------------------------------------------------------------------------------


@given(TEXT, st.integers(0, 6), st.integers(0, 9), st.sampled_from(ENCODINGS))
def test_snapshot_matches_the_reference(text, line, character, encoding):
    store = DocumentStore()
    store.open("u", "go", 4, text)
    snap = store.get("u").snapshot(line, character, encoding)
    cursor = ref_offset(text, line, character, encoding)
    assert (snap.uri, snap.version, snap.language_id, snap.encoding) == ("u", 4, "go", encoding)
    assert (snap.text, snap.offset, snap.line0, snap.col0) == (text, cursor, 0, 0)  # small: the whole document
    for offset in range(len(text) + 1):
        assert snap.position(offset) == ref_position(text, offset, encoding)
    assert snap.position(-5) == (0, 0) and snap.position(len(text) + 5) == ref_position(text, len(text), encoding)
    for n, (start, end) in enumerate(ref_lines(text)):
        assert snap.line_end(start) == end
        assert snap.index(n, 1) == min(start + 1, end) and snap.index(n, 99) == end
    assert snap.index(len(ref_lines(text)), 0) is None and snap.index(-1, 0) is None


def test_snapshot_of_a_long_document_is_an_excerpt_around_the_cursor():
    n = documents.EXCERPT_CHARS // 10
    lines = [f"line {i:4}\n" for i in range(3 * n)]  # 10 characters each
    text = "".join(lines)
    store = DocumentStore()
    store.open("u", "py", 1, text)
    row = 3 * n // 2
    snap = store.get("u").snapshot(row, 4, "utf-16")
    assert snap.text[snap.offset - 4 : snap.offset + 6] == lines[row]  # the cursor's line is whole
    assert 0 < snap.line0 < row and snap.col0 == 0
    assert text.index(snap.text) == sum(map(len, lines[: snap.line0]))  # an exact slice of the document
    assert snap.offset <= documents.EXCERPT_CHARS + 10 and len(snap.text) - snap.offset <= documents.EXCERPT_CHARS + 10
    assert len(snap.text) - snap.offset > documents.EXCERPT_CHARS - 10  # text after the cursor line too
    assert snap.position(snap.offset) == (row, 4)
    assert snap.position(0) == (snap.line0, 0)
    assert snap.index(row + 2, 3) == snap.offset - 4 + 20 + 3
    assert snap.index(snap.line0 - 1, 0) is None and snap.index(0, 0) is None


def test_snapshot_excerpt_size_is_exact():
    excerpt = documents.EXCERPT_CHARS
    lines = [f"line {i:4}\n" for i in range(3 * excerpt // 10)]  # 10 characters each
    store = DocumentStore()
    store.open("u", "py", 1, "".join(lines))
    row, col = len(lines) // 2, 8
    snap = store.get("u").snapshot(row, col, "utf-32")
    # before: the 8 characters of the cursor line, then whole lines while budget is left (excerpt - 8 is a
    # multiple of 10: the last line uses it up exactly); after: the line's rest (2), then whole lines likewise
    first, end = row - (excerpt - col) // 10, row + 1 + -(-(excerpt - 2) // 10)
    assert snap.line0 == first and snap.text == "".join(lines[first:end])
    assert snap.offset == (row - first) * 10 + col


def test_snapshot_at_the_document_start_and_end():
    text = "".join(f"l{i}\r\n" for i in range(5))
    store = DocumentStore()
    store.open("u", "py", 1, text)
    first = store.get("u").snapshot(0, 0, "utf-8")
    assert (first.offset, first.line0, first.text) == (0, 0, text)
    last = store.get("u").snapshot(99, 0, "utf-8")  # past the end: the end of the document
    assert last.offset == len(text) and last.position(last.offset) == (5, 0)
    assert (last.line_end(1), last.line_end(2), last.line_end(4)) == (2, 2, 6)
    assert last.line_end(len(text)) == len(text)


def test_snapshot_of_a_huge_line_is_cut_around_the_cursor():
    line = "x" * 100_000 + "😀ab"
    text = "before\n" + line + "\nafter\n"
    store = DocumentStore()
    store.open("u", "py", 3, text)
    snap = store.get("u").snapshot(1, 100_000 + 2 + 1, "utf-16")  # after "😀a"
    assert snap.text[snap.offset - 3 : snap.offset] == "x😀a"
    assert snap.offset == documents.EXCERPT_CHARS
    cut = 100_002 - documents.EXCERPT_CHARS  # code points of the line before the excerpt
    assert (snap.line0, snap.col0) == (1, cut)
    # lines before a cut line are not contiguous with the excerpt; those after it are
    assert snap.text == line[cut:] + "\nafter\n"
    assert snap.position(snap.offset) == (1, 100_003)
    assert snap.position(0) == (1, cut)
    assert snap.index(1, 5) is None  # its line is cut: column offsets would not start at the line start
    utf8 = store.get("u").snapshot(1, 100_000 + 4 + 1, "utf-8")
    assert utf8.col0 == cut and utf8.position(utf8.offset) == (1, 100_005)


def test_snapshot_after_a_huge_line_head():
    text = "a\n" + "y" * 40_000
    store = DocumentStore()
    store.open("u", "py", 1, text)
    snap = store.get("u").snapshot(1, 10, "utf-16")  # near the start of a huge line
    assert (snap.line0, snap.col0) == (0, 0) and snap.text.startswith("a\n")
    assert len(snap.text) - snap.offset == documents.EXCERPT_CHARS


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_many_random_edits_on_wide_characters(encoding):
    rng = random.Random(11)
    pieces = ["😀", "数", "é", "a", "\n", "\r\n", "\r", "xyz", "𝄞b"]
    text = "".join(rng.choice(pieces) for _ in range(60))
    store = DocumentStore()
    store.open("u", "py", 1, text)
    for version in range(2, 302):
        start = (rng.randint(0, 9), rng.randint(0, 14))
        end = (rng.randint(0, 9), rng.randint(0, 14)) if rng.random() < 0.5 else start
        change = Change("".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))), start, end)
        text = ref_apply(text, change, encoding)
        store.change("u", version, [change], encoding)
        assert store.get("u").text == text


def test_a_change_with_one_position_missing_is_a_full_text():
    store = DocumentStore()
    store.open("u", "py", 1, "old")
    store.change("u", 2, [Change("new", (0, 1), None)], "utf-16")
    assert store.get("u").text == "new"


def test_adoption_applies_every_later_change_in_the_documents_encoding():
    store = DocumentStore()
    changes = [Change("😀😀ab"), Change("X", (0, 2), (0, 4)), Change("Y", (0, 0), (0, 0))]
    store.change("file:///n", 5, changes, "utf-16")
    assert store.get("file:///n").text == "Y😀Xab"
    assert store.get("file:///n").snapshot(0, 0, "utf-16").language_id == ""


def test_default_document_bound():
    store = DocumentStore()
    for i in range(513):
        store.open(f"u{i}", "py", 1, "")
    assert len(store) == 512 and "u0" not in store and "u1" in store


@pytest.mark.parametrize("col", [2, 3, 7, 8])  # where the excerpt's budget ends exactly at 0 or 1 on either side
def test_snapshot_excerpt_budget_edges(col):
    excerpt = documents.EXCERPT_CHARS
    lines = [f"line {i:4}\n" for i in range(3 * excerpt // 10)]
    store = DocumentStore()
    store.open("u", "py", 1, "".join(lines))
    row = len(lines) // 2
    snap = store.get("u").snapshot(row, col, "utf-32")
    first, end = row - -(-(excerpt - col) // 10), row + 1 + -(-(excerpt - (10 - col)) // 10)
    assert snap.line0 == first and snap.text == "".join(lines[first:end])


def test_snapshot_of_a_cut_wide_line_counts_its_start_column_in_the_encoding():
    line = "😀" * 40_000 + "ab"
    store = DocumentStore()
    store.open("u", "py", 1, line + "\nafter")
    for encoding, per_char in (("utf-16", 2), ("utf-8", 4), ("utf-32", 1)):
        snap = store.get("u").snapshot(0, per_char * 40_000 + 1, encoding)  # after "a"
        cut = 40_001 - documents.EXCERPT_CHARS
        assert snap.col0 == per_char * cut
        assert snap.position(snap.offset) == (0, per_char * 40_000 + 1)
        assert snap.position(len(snap.text)) == (1, 5)  # later lines do not start at col0


# -- chunks: small CHUNK_CHARS so that short texts span many chunks ----------------------------------------------

SMALL_CHUNK = 4


def ref_cut(text: str, size: int) -> list[str]:
    """Chunks as documented: each ends at the first line end that ends `size` or more characters past its start,
    unless that line end ends the text (then the rest is one chunk)."""
    ends = [start for start, _ in ref_lines(text)[1:]]  # where each line end ends
    chunks, pos = [], 0
    for end in ends:
        if end - pos >= size and end < len(text):
            chunks.append(text[pos:end])
            pos = end
    return [*chunks, text[pos:]]


@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_cut_matches_the_reference(text):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(documents, "CHUNK_CHARS", SMALL_CHUNK)
        assert documents._cut(text) == ref_cut(text, SMALL_CHUNK)


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("abcdefgh", ["abcdefgh"]),  # no line end: one chunk
        ("abc\ndef\n", ["abc\n", "def\n"]),  # the line end at the target
        ("ab\r\ncd\n", ["ab\r\n", "cd\n"]),  # a \r\n ending at the target is not split
        ("abc\r\nd\n", ["abc\r\n", "d\n"]),  # nor one starting at it
        ("a\rbcd\re", ["a\rbcd\r", "e"]),  # a line end before the target does not cut
        ("abcd\n", ["abcd\n"]),  # a line end that ends the text does not cut
        ("a\nb\nc\nd\ne\n", ["a\nb\n", "c\nd\n", "e\n"]),
    ],
)
def test_cut_table(text, chunks):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(documents, "CHUNK_CHARS", SMALL_CHUNK)
        assert documents._cut(text) == chunks


def check_document(doc, text):
    """Every view of a chunked document against the plain string."""
    starts = [start for start, _ in ref_lines(text)]
    lines = [text[a:b] for a, b in itertools.pairwise([*starts, len(text)])]
    assert doc.text == text and doc.size == len(text) and doc.line_count == len(lines)
    assert [doc.line(i) for i in range(len(lines))] == lines
    for i in range(len(lines)):
        assert list(doc.lines_from(i, 1)) == lines[i:]
        assert list(doc.lines_from(i, -1)) == lines[i::-1]
    chunks = doc._chunks
    assert "".join(chunks) == text
    assert all(c[-1:] in ("\r", "\n") for c in chunks[:-1])  # whole lines
    assert not any(a.endswith("\r") and b.startswith("\n") for a, b in itertools.pairwise(chunks))  # \r\n kept whole


LONG_TEXT = st.lists(st.sampled_from(PIECES), min_size=10, max_size=40).map("".join)
WIDE_POSITION = st.tuples(st.integers(-1, 16), st.integers(0, 5))
WIDE_CHANGE = st.one_of(
    st.builds(Change, TEXT, WIDE_POSITION, WIDE_POSITION),
    st.builds(Change, TEXT, WIDE_POSITION, WIDE_POSITION),
    st.builds(Change, TEXT, WIDE_POSITION, WIDE_POSITION),
    st.builds(Change, LONG_TEXT),
)


@given(LONG_TEXT, st.lists(WIDE_CHANGE, min_size=1, max_size=8), st.sampled_from(ENCODINGS))
def test_edits_across_chunks_match_the_reference(text, changes, encoding):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(documents, "CHUNK_CHARS", SMALL_CHUNK)
        store = DocumentStore()
        store.open("u", "py", 1, text)
        check_document(store.get("u"), text)
        for version, change in enumerate(changes, start=2):
            text = ref_apply(text, change, encoding)
            assert store.change("u", version, [change], encoding) is None
            check_document(store.get("u"), text)


def test_a_crlf_brought_together_across_a_chunk_edge_is_one_line_end():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(documents, "CHUNK_CHARS", SMALL_CHUNK)
        text = "abcd\rXefgh\nijkl\nmnop\n"
        store = DocumentStore()
        store.open("u", "py", 1, text)
        assert len(store.get("u")._chunks) > 2
        store.change("u", 2, [Change("", (1, 0), (1, 1))], "utf-16")  # "\r" + "efgh": the X goes
        store.change("u", 3, [Change("\n", (1, 0), (1, 0))], "utf-16")  # "\r" + "\nefgh"
        check_document(store.get("u"), "abcd\r\nefgh\nijkl\nmnop\n")


def test_a_long_document_in_many_chunks():
    lines = [f"{i:05}\r\n" if i % 2 else f"{i:05}\n" for i in range(5_000)]
    text = "".join(lines)
    store = DocumentStore()
    store.open("u", "py", 1, text)
    doc = store.get("u")
    assert len(doc._chunks) > 3 and doc.line_count == len(lines) + 1
    assert doc.line(3_000) == lines[3_000] and doc.line(len(lines)) == ""
    # an edit spanning two chunk edges, and one in a late chunk
    start, end = 1_000, 4_000
    store.change("u", 2, [Change("X\r", (start, 2), (end, 3))], "utf-16")
    text = "".join(lines[:start]) + lines[start][:2] + "X\r" + lines[end][3:] + "".join(lines[end + 1 :])
    store.change("u", 3, [Change("\nY", (start + 2, 0), (start + 2, 0))], "utf-16")
    text = ref_apply(text, Change("\nY", (start + 2, 0), (start + 2, 0)), "utf-16")
    check_document(store.get("u"), text)


# -- snapshots of a cut line -------------------------------------------------------------------------------------


def test_snapshot_index_on_a_cut_line():
    line = "x" * 100_000 + "😀ab"
    store = DocumentStore()
    store.open("u", "py", 3, "before\n" + line + "\nafter\n")
    snap = store.get("u").snapshot(1, 100_000 + 2 + 1, "utf-16")
    cut = 100_002 - documents.EXCERPT_CHARS
    assert snap.cut == cut
    assert snap.index(1, cut - 1) is None  # before the excerpt
    assert snap.index(1, cut) == 0 and snap.index(1, cut + 7) == 7
    assert snap.text[snap.index(1, 100_001) :].startswith("ab")
    assert snap.index(1, 10**9) == len(line) - cut  # clamped to the line's end
    assert snap.index(2, 3) == len(line) - cut + 1 + 3  # the next line is whole
    assert snap.index(2, 99) == len(line) - cut + 1 + 5 and snap.index(3, 0) == len(snap.text)


# -- generations and the total size bound ------------------------------------------------------------------------


def test_every_open_is_a_new_generation():
    store = DocumentStore()
    store.open("u", "py", 1, "abc")
    store.open("v", "py", 1, "abc")
    first, other = store.generation("u"), store.generation("v")
    assert isinstance(first, int) and first != other
    assert store.get("u").generation == first and store.get("u").snapshot(0, 0, "utf-16").generation == first
    store.change("u", 2, [Change("x", (0, 0), (0, 0))], "utf-16")
    assert store.generation("u") == first  # an edit is the same open
    store.close("u")
    assert store.generation("u") is None and store.generation("never") is None
    store.open("u", "py", 1, "abc")  # the same version and text, reopened
    assert store.generation("u") not in (first, other)
    assert store.get("u").snapshot(0, 0, "utf-16").generation == store.generation("u")


def test_total_size_bound_drops_the_least_recently_used():
    store = DocumentStore(max_chars=100, max_total_chars=25)
    assert store.open("a", "py", 1, "x" * 10) is None
    assert store.open("b", "py", 1, "x" * 10) is None
    store.get("a")  # used: b is the least recent
    assert store.open("c", "py", 1, "x" * 5) is None  # 25 in all: exactly the bound
    assert (len(store), store.total_chars()) == (3, 25)
    note = store.change("c", 2, [Change("y", (0, 0), (0, 0))], "utf-16")  # 26
    assert note == "1 least recently used documents dropped (over 512 documents or 25 chars in all)"
    assert ("a" in store, "b" in store, "c" in store, store.total_chars()) == (True, False, True, 16)
    # two documents over the bound: one goes
    assert store.open("d", "py", 1, "x" * 20) is None
    assert ("a" in store, "c" in store, "d" in store, store.total_chars()) == (False, False, True, 20)
    store.open("e", "py", 1, "x" * 3)
    note = store.change("e", 2, [Change("x" * 20, (0, 0), (0, 0))], "utf-16")
    assert note == "1 least recently used documents dropped (over 512 documents or 25 chars in all)"
    assert list(store._docs) == ["e"]


def test_one_document_over_the_total_bound_is_kept():
    store = DocumentStore(max_chars=100, max_total_chars=10)
    assert store.open("a", "py", 1, "x" * 50) is None and "a" in store
    assert store.change("a", 2, [Change("y", (0, 0), (0, 0))], "utf-16") is None and store.total_chars() == 51


def test_total_bound_defaults_to_four_documents_at_the_cap():
    store = DocumentStore(max_chars=10)
    for name, size in (("a", 10), ("b", 10), ("c", 10), ("d", 9)):
        store.open(name, "py", 1, "x" * size)
    assert store.change("d", 2, [Change("x", (0, 0), (0, 0))], "utf-16") is None  # 40 in all: the bound
    assert len(store) == 4
    store.open("e", "py", 1, "x")
    assert ("a" in store, len(store), store.total_chars()) == (False, 4, 31)


# -- recently edited regions (what dcopilot.lsp.workspace draws snippets from) ----------------------------------


def _numbered(n: int) -> str:
    return "".join(f"line{i}\n" for i in range(n))


def _edit(line: int, text: str, end_line: int | None = None) -> Change:
    return Change(text, (line, 0), (line if end_line is None else end_line, 0))


@pytest.mark.parametrize(
    "changes,expected",
    [
        ([_edit(10, "x")], [(10, 10)]),
        ([_edit(10, "a\nb\n")], [(10, 12)]),  # two lines inserted: the region spans them
        ([_edit(10, "x"), _edit(13, "y")], [(10, 13)]),  # within EDIT_MERGE_LINES: one region
        ([_edit(10, "x"), _edit(7, "y")], [(7, 10)]),  # just above it too
        ([_edit(10, "x"), _edit(14, "y")], [(10, 10), (14, 14)]),  # one line further: two
        ([_edit(10, "x"), _edit(6, "y")], [(10, 10), (6, 6)]),
        ([_edit(30, "y"), _edit(10, "a\nb\n")], [(32, 32), (10, 12)]),  # lines inserted above shift older regions
        ([_edit(30, "y"), _edit(10, "", end_line=13)], [(27, 27), (10, 10)]),  # and deleted ones too
        ([_edit(30, "y"), _edit(30, "z\n")], [(30, 31)]),  # an edit at a region's first line grows it
        ([_edit(20, "a\nb\nc\n"), _edit(40, "q"), _edit(21, "", end_line=23)], [(20, 21), (38, 38), (21, 21)]),
        ([_edit(10, "a\nb\nc\n"), _edit(10, "", end_line=13)], [(10, 10)]),  # undone in place: one line
        # a region partly deleted keeps what is left of it
        ([_edit(10, "a\nb\nc\n"), _edit(40, "q"), _edit(11, "", end_line=14)], [(10, 10), (37, 37), (11, 11)]),
        ([_edit(10, "a\n" * 10), _edit(8, "x")], [(8, 20)]),  # near a long region's first line: merged
        ([_edit(10, "x"), _edit(12, "a\n" * 5)], [(10, 17)]),  # starts near it, ends far: merged
        ([_edit(10, "x"), _edit(7, "a\nb\n")], [(7, 12)]),  # inserted just above: merged with the shifted region
        ([_edit(5 * i, "x") for i in range(EDITS_KEPT + 3)], [(5 * i, 5 * i) for i in range(3, EDITS_KEPT + 3)]),
        ([Change("whole\n")], []),  # a full-text change says nothing about where
    ],
)
def test_recent_edits(changes, expected):
    doc = Document("file:///a.py", "python", 1, _numbered(60))
    for c in changes:
        doc.apply(c, enc.UTF16)
    assert doc.edits == expected


def test_recent_lists_documents_most_recently_used_first_without_reordering():
    store = DocumentStore()
    for name in ("a", "b", "c"):
        store.open(f"file:///{name}", "python", 1, name)
    store.get("file:///a")
    assert [d.uri for d in store.recent()] == ["file:///a", "file:///c", "file:///b"]
    assert [d.uri for d in store.recent()] == ["file:///a", "file:///c", "file:///b"]
