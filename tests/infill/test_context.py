"""Cross-file context ranking (dcopilot.engine.tasks.context): identifiers, windows, the query around the cursor and
the ranking of windows into snippets, as tables."""

import pytest
from dcopilot.engine.tasks import context
from dcopilot.engine.tasks.context import (
    FIRST_CUT,
    Window,
    identifiers,
    index,
    jaccard,
    query,
    rank,
    rank_indexed,
    snippets,
    windows,
)
from dcopilot.engine.tasks.requests import Snippet
from hypothesis import given, settings
from hypothesis import strategies as st

EQUIVALENT_MUTANTS = [
    (
        "jaccard",
        "if not a and not b:",
        "with one set empty the intersection is empty and the union is the other set: 0 / len(other) is 0.0 too",
    ),
    (
        "query",
        'pos = text.rfind("\\n", None, pos)',
        "a start of None is the start of the text, as 0 is",
    ),
    (
        "query",
        'pos = text.rfind("\\n", 1, pos)',
        "it misses only a line break at offset 0, and then the query starts at 0 instead of 1: the one character "
        "more is that line break, which holds no identifier",
    ),
    (
        "query",
        "if pos <= 0:",
        "stopping at a line break at offset 0 starts the query at 1 instead of 0: only that line break is left out",
    ),
    (
        "query",
        "if pos < 1:",
        "stopping at a line break at offset 0 starts the query at 1 instead of 0: only that line break is left out",
    ),
    (
        "rank_indexed",
        "if min_similarity <= 0 or limit < 0:  # a window sharing nothing can qualify: score them all",
        "limit 0 then takes the indexed path: a cut of 0 makes its floor the lowest score kept, so _pick is offered "
        "every qualifying window in rank's order, as through rank(), and returns [] at once either way",
    ),
    (
        "rank_indexed",
        "floor = sorted(scores, reverse=True)[cut - 1] if cut <= len(scores) else min_similarity",
        "when the cut is the number of scores the cut-th best is the lowest score kept, so `>= floor` keeps every "
        "score, as `>= min_similarity` does: the same windows in the same pass, one sort more",
    ),
    (
        "rank_indexed",
        "cut *= 5",
        "the widening factor only sets how many windows each later pass sorts: with any factor above 1 the cut "
        "reaches every score, each pass's windows are a prefix of rank's order, so the result is rank's",
    ),
]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("total = add(a, b)", {"total", "add"}),  # single letters say nothing
        ("self.x_1 = __init__(y2)", {"self", "x_1", "__init__", "y2"}),
        ("3.14 + 42", set()),  # numbers are not identifiers
        ("naïve café = 变量", {"naïve", "café", "变量"}),  # letters of any script
        ("", set()),
    ],
)
def test_identifiers(text, expected):
    assert identifiers(text) == frozenset(expected)


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ({"x1", "y1"}, {"x1", "y1"}, 1.0),
        ({"x1", "y1"}, {"x1", "z1"}, 1 / 3),
        ({"x1"}, {"y1"}, 0.0),
        (set(), {"y1"}, 0.0),
        (set(), set(), 0.0),
    ],
)
def test_jaccard(a, b, expected):
    assert jaccard(frozenset(a), frozenset(b)) == pytest.approx(expected)


def lines(n: int) -> list[str]:
    return [f"v{i} = {i}\n" for i in range(n)]


@pytest.mark.parametrize(
    "n,size,stride,starts",
    [
        (5, 20, 10, [0]),  # shorter than a window: one window
        (20, 20, 10, [0]),
        (25, 20, 10, [0, 5]),  # the last window ends at the last line
        (40, 20, 10, [0, 10, 20]),
        (45, 20, 10, [0, 10, 20, 25]),
        (6, 2, 3, [0, 3, 4]),
        (3, 5, 1, [0]),  # shorter than a window, stride 1: still the one window
        (5, 5, 1, [0]),  # exactly a window: no second one
        (4, 1, 1, [0, 1, 2, 3]),  # one line per window
        (5, 2, 1, [0, 1, 2, 3]),
    ],
)
def test_windows_cover_the_document(n, size, stride, starts):
    got = windows("a.py", lines(n), size=size, stride=stride)
    assert got == [
        Window("a.py", s, text, identifiers(text)) for s in starts for text in ["".join(lines(n)[s : s + size])]
    ]
    assert got[-1].last == n - 1


def test_windows_skip_blank_text_and_offset_lines():
    got = windows("a.py", ["\n"] * 4 + ["x1 = 1\n"], first=100, size=2, stride=2)
    assert [(w.first, w.text) for w in got] == [(103, "\n" + "x1 = 1\n")]


@pytest.mark.parametrize("size,stride", [(0, 1), (1, 0), (-3, 2)])
def test_windows_refuse_empty_sizes_and_strides(size, stride):
    with pytest.raises(ValueError, match=r"^window size and stride must be positive$"):
        windows("a.py", ["x\n"], size=size, stride=stride)


TEXT = "aa = 1\nbb = 2\ncc = 3\ndd = 4|\nee = 5\nff = 6\ngg = 7\n"


@pytest.mark.parametrize(
    "before,after,expected",
    [
        (0, 0, {"dd"}),
        (1, 0, {"cc", "dd"}),
        (1, 1, {"cc", "dd", "ee"}),
        (9, 9, {"aa", "bb", "cc", "dd", "ee", "ff", "gg"}),  # clamped to the text
    ],
)
def test_query_takes_lines_around_the_cursor(before, after, expected):
    text = TEXT.replace("|", "")
    assert query(text, TEXT.index("|"), before=before, after=after) == frozenset(expected)


@pytest.mark.parametrize(
    "marked,after,expected",
    [
        # the cursor on an empty first line: its line is empty, the lines below come one by one
        ("|\naa\nbb\n", 0, set()),
        ("|\naa\nbb\n", 1, {"aa"}),
        ("|\naa\nbb\n", 2, {"aa", "bb"}),
        # a blank line below the cursor counts as one of the `after` lines
        ("dd|\n\nee\nff\n", 1, {"dd"}),
        ("dd|\n\nee\nff\n", 2, {"dd", "ee"}),
        ("dd|", 3, {"dd"}),  # no line end at all
    ],
)
def test_query_counts_empty_lines_below_the_cursor(marked, after, expected):
    text = marked.replace("|", "")
    assert query(text, marked.index("|"), before=2, after=after) == frozenset(expected)


def w(path: str, first: int, text: str) -> Window:
    return Window(path, first, text, identifiers(text))


def test_rank_orders_by_similarity_and_drops_overlaps_duplicates_and_unrelated():
    around = identifiers("total_price = compute_total(items, discount)")
    best = w("b.py", 0, "def compute_total(items, discount):\n    total_price = 0\n")
    overlapping = w("b.py", 1, "    total_price = 0\n    items\n")  # same file, overlaps `best`
    copy = w("c.py", 0, best.text)  # the same text elsewhere
    second = w("d.py", 0, "items = []\n")
    unrelated = w("e.py", 0, "import os\n")
    got = rank(around, [unrelated, second, overlapping, copy, best], limit=5)
    assert got == [best, second]
    assert rank(around, [best, second], limit=1) == [best]
    assert rank(around, [second], limit=3, min_similarity=0.5) == []  # 1/4 shared
    assert rank(around, [second], limit=3, min_similarity=0.25) == [second]  # the minimum itself is enough
    assert snippets(got) == (Snippet("b.py", best.text), Snippet("d.py", "items = []\n"))


def test_rank_breaks_ties_by_path_then_line():
    around = identifiers("alpha beta")
    a, b, c = w("z.py", 0, "alpha\n"), w("a.py", 50, "alpha\n  beta\n"), w("a.py", 5, "beta\n")
    assert [(x.path, x.first) for x in rank(around, [a, b, c], limit=3)] == [("a.py", 50), ("a.py", 5), ("z.py", 0)]


@pytest.mark.parametrize(
    "first,kept",
    [
        (2, True),  # lines 2-4 end right before the better window's line 5
        (3, False),  # lines 3-5: its last line is the better window's first
        (5, False),
        (7, False),  # lines 7-9: its first line is the better window's last
        (8, True),
    ],
)
def test_rank_drops_a_window_that_shares_one_line_with_a_better_one(first, kept):
    around = identifiers("alpha beta gamma")
    best = w("a.py", 5, "alpha\nbeta\ngamma\n")  # lines 5-7
    other = w("a.py", first, "alpha\n  x\n  y\n")  # three lines, a different text
    assert rank(around, [other, best], limit=3) == ([best, other] if kept else [best])


def test_index_lists_the_windows_holding_each_identifier():
    a, b = w("a.py", 0, "alpha beta\n"), w("a.py", 10, "beta gamma x\n")
    got = index([a, b])
    assert got.windows == (a, b) and got.sizes == (2, 2)
    assert {name: list(at) for name, at in got.postings.items()} == {"alpha": [0], "beta": [0, 1], "gamma": [1]}


AROUND = identifiers("alpha beta gamma")
A1 = w("a.py", 0, "alpha beta\n")
A1_OVERLAP = w("a.py", 1, "alpha beta gamma delta\n")
B1 = w("b.py", 0, "alpha beta\n")  # the same text as A1 elsewhere: a repeat
B2 = w("b.py", 40, "gamma epsilon\n")
A_AGAIN = w("a.py", 0, "beta alpha\n")  # the same path and line from another document (two files named a.py)
NOTHING = w("c.py", 0, "unrelated words\n")


@pytest.mark.parametrize(
    "groups,limit,min_similarity",
    [
        ([[A1, A1_OVERLAP, B1, B2]], 3, 0.05),
        ([[B2, B1], [A1_OVERLAP, A1]], 3, 0.05),  # order across indexes: ties fall back to candidate order
        ([[A1], [A_AGAIN], [B2]], 3, 0.05),  # equal key (path, line, score): the earlier candidate wins
        ([[A_AGAIN], [A1], [B2]], 3, 0.05),
        ([[A1, B2, NOTHING]], 5, 0.05),  # sharing nothing never qualifies
        ([[A1, B2, NOTHING]], 5, 0.0),  # ... unless the floor is 0: then every window is scored
        ([[A1, B2]], 0, 0.05),
        ([[A1, A1_OVERLAP]], 1, 0.9),
        ([[], [A1]], 2, 0.05),
        ([], 2, 0.05),
        # every window is scored (the floor is 0), best first: not the order of paths
        ([[A1, A1_OVERLAP, NOTHING]], 5, 0.0),
        # one snippet from FIRST_CUT + 1 windows (the floor is the cut-th best score), then from FIRST_CUT (every one)
        ([[w(f"p{i}.py", 0, f"alpha x{i}\n") for i in range(FIRST_CUT + 1)]], 1, 0.05),
        ([[w(f"p{i}.py", 0, f"alpha x{i}\n") for i in range(FIRST_CUT)]], 1, 0.05),
    ],
)
def test_rank_indexed_is_rank(groups, limit, min_similarity):
    flat = [x for g in groups for x in g]
    got = rank_indexed(AROUND, [index(g) for g in groups], limit, min_similarity)
    assert got == rank(AROUND, flat, limit, min_similarity)
    assert [id(x) for x in got] == [id(x) for x in rank(AROUND, flat, limit, min_similarity)]  # the same windows


def offered_windows(monkeypatch) -> list[list[Window]]:
    """Every pass's windows, in the order rank_indexed offers them to the picker (the real one still picks). A pass
    that offers no more windows than the one before fails at once: it would repeat itself forever."""
    passes: list[list[Window]] = []
    pick = context._pick

    def recording(ordered, limit):
        ordered = list(ordered)
        assert not passes or len(ordered) > len(passes[-1]), "a pass offered no more windows than the last"
        passes.append(ordered)
        return pick(ordered, limit)

    monkeypatch.setattr(context, "_pick", recording)
    return passes


# 40 windows in 40 files, window i holding the first i + 1 of 40 names: 40 distinct scores, no overlaps, no repeats
MANY_NAMES = [f"name{i:02}" for i in range(40)]
MANY = [w(f"f{i:02}.py", 0, " ".join(MANY_NAMES[: i + 1]) + "\n") for i in range(40)]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_rank_indexed_sorts_only_the_best_windows(monkeypatch, limit):
    """The point of the indexes: when the first pass fills the snippets, only the FIRST_CUT * limit best windows
    were sorted and offered, not all 40."""
    passes = offered_windows(monkeypatch)
    got = rank_indexed(frozenset(MANY_NAMES), [index(MANY[:20]), index(MANY[20:])], limit)
    assert got == MANY[::-1][:limit]
    assert passes == [MANY[::-1][: FIRST_CUT * limit]]


def test_rank_indexed_offers_every_window_tied_with_the_cut(monkeypatch):
    """Ties at the cut-th score all go into the pass, in path order: for a cut of 8, three windows score the most
    and twelve tie below them; the one scoring less is left out."""
    around = frozenset(MANY_NAMES[:4])
    top = [w(f"t{i}.py", 0, " ".join(MANY_NAMES[:4]) + f" own{i}\n") for i in range(3)]
    tied = [w(f"u{i:02}.py", 0, " ".join(MANY_NAMES[:2]) + f" own{i}\n") for i in range(12)]
    low = w("v.py", 0, "name00 own\n")
    passes = offered_windows(monkeypatch)
    assert rank_indexed(around, [index([low, *tied[::-1], *top])], 1) == [top[0]]
    assert passes == [[*top, *tied]]


def test_rank_indexed_widens_past_windows_used_up_by_repeats(monkeypatch):
    """20 copies of one text fill the first pass (cut 16 for two snippets, and four more tied with it): one is
    taken, the rest repeat it, so the next pass offers more windows, down to the one that differs."""
    copies = [w(f"copy{i:02}.py", 0, "alpha beta gamma\n") for i in range(20)]
    lower = [w(f"z{i}.py", 0, f"alpha beta x{i}\n") for i in range(5)]
    assert rank(AROUND, [*lower, *copies], limit=2) == [copies[0], lower[0]]
    passes = offered_windows(monkeypatch)
    assert rank_indexed(AROUND, [index([*lower, *copies])], limit=2) == [copies[0], lower[0]]
    assert passes == [copies, [*copies, *lower]]


NAMES = ["aa", "bb", "cc", "dd", "ee", "ff", "gg", "hh"]


@st.composite
def indexed_windows(draw):
    """Groups of windows from few paths, lines and names: many ties, overlaps, repeats and shared keys."""
    groups = []
    for _ in range(draw(st.integers(0, 4))):
        group = []
        for _ in range(draw(st.integers(0, 12))):
            names = draw(st.lists(st.sampled_from(NAMES), max_size=5))
            text = " ".join(names) + "\n" + "\n" * draw(st.integers(0, 3))
            group.append(w(draw(st.sampled_from(["a.py", "b.py"])), draw(st.integers(0, 6)), text))
        groups.append(group)
    return groups


# 300 examples in a normal run; a mutation run (the `mutation` profile, tests/conftest.py) runs this once per mutant
# and takes the default count: the tables above kill every mutant that this test kills.
@settings(max_examples=300 if settings.get_current_profile_name() != "mutation" else settings.default.max_examples)
@given(
    indexed_windows(),
    st.lists(st.sampled_from(NAMES), max_size=6),
    st.integers(0, 6),
    st.sampled_from([0.05, 0.2, 0.5]),
)
def test_rank_indexed_chooses_what_rank_chooses(groups, around, limit, min_similarity):
    """The language server ranks through the indexes; the benchmarks and the definition of the order are rank()."""
    flat = [x for g in groups for x in g]
    expected = rank(frozenset(around), flat, limit, min_similarity)
    got = rank_indexed(frozenset(around), [index(g) for g in groups], limit, min_similarity)
    assert [id(x) for x in got] == [id(x) for x in expected]
