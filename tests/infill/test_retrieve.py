"""Candidates from context (dcopilot.engine.tasks.retrieve.continuations), as tables: `|` marks the cursor."""

import pytest
from dcopilot.engine.tasks.retrieve import SCAN_LINES, Match, continuations

EQUIVALENT_MUTANTS = [
    (
        "_context",
        "while k > 0 and not lines[k].strip():",
        "stopping on a blank line 0 instead of stepping past it compares that blank line with a non-blank one: "
        "no match either way, as at the start of the lines",
    ),
    (
        "_context",
        "while k >= 1 and not lines[k].strip():",
        "stopping on a blank line 0 instead of stepping past it compares that blank line with a non-blank one: "
        "no match either way, as at the start of the lines",
    ),
    (
        "_fit_suffix",
        "return None if at < 0 else text[:at]",
        "a continuation that starts with the suffix is then the empty text, which the final filter drops as blank",
    ),
]


def found(doc: str, snippets=(), multiline=True, limit=4) -> list[str]:
    before, after = doc.split("|")
    return [m.text for m in continuations(before, after, snippets, multiline=multiline, limit=limit)]


@pytest.mark.parametrize(
    "doc,expected",
    [
        # an earlier line that starts like the cursor's line continues it
        ("x = load(path)\nprint(x)\nx = lo|\n", ["ad(path)"]),
        # a later line too (the document below the cursor), the nearer first
        ("a = 1\ny = ca|\nb = 2\ny = call(b)\n", ["ll(b)"]),
        ("y = ca|\ny = call(b)\n", ["ll(b)"]),  # the line right below the cursor's
        # the same distance above and below: the texts' order decides; otherwise the nearer line first
        ("y = call(a)\ny = ca|\ny = call(z)\n", ["ll(a)", "ll(z)"]),
        ("y = call(a)\nq\ny = ca|\ny = call(z)\n", ["ll(z)", "ll(a)"]),
        ("y = call(z)\ny = ca|\nq\ny = call(a)\n", ["ll(z)", "ll(a)"]),
        ("y = call(far)\n\n\n\ny = call(near)\ny = ca|", ["ll(near)", "ll(far)"]),
        # the indent does not matter, the typed text does
        ("def f():\n    return g(1)\nreturn g|", ["(1)"]),
        ("X_train = load(path)\nX_train = lo|", ["ad(path)"]),  # only spaces and tabs are indent
        # nothing longer than what is typed: nothing
        ("x = 1\nx = 1|", []),
        ("x = 1\ny|", []),
        # nothing typed: the line after an earlier copy of the previous line (a repeated structure)
        ("if a:\n    run(a)\nif a:\n    |", ["run(a)"]),
        ("if a:\n    run(a)\nif b:\n    |", []),  # previous line differs: no repeat to follow
        ("if a:\n\n    run(a)\nif a:\n    |", ["run(a)"]),  # blank lines between do not break the repeat
        ("if a:\n  \n\n    run(a)\nif a:\n\n    |", ["run(a)"]),
        # more equal lines before the match rank it higher
        ("x0\nif a:\n    one()\nx1\nif a:\n    two()\nx1\nif a:\n    |", ["two()", "one()"]),
    ],
)
def test_continuations_of_the_current_line(doc, expected):
    assert found(doc, multiline=False) == expected


@pytest.mark.parametrize(
    "doc,expected",
    [
        # code right of the cursor: the continuation stops where that code starts
        ("f(alpha, beta)\nf(al|)\n", ["pha, beta"]),
        ("f(alpha, beta)\nf(al|, beta)\n", ["pha"]),
        # the match has no such code after it: another line shape, not offered
        ("f(alpha)\nf(al|, gamma)\n", []),
        ("f(alpha)\nf(alpha, beta)\nf(al|, beta)\n", ["pha"]),  # a line that does not fit leaves the others
        ("f(a, b)\nf(|, b)\n", ["a"]),  # one character before the code right of the cursor
        ("t = (a, 1), (b, 1)\nt = (|, 1)\n", ["a"]),  # up to the first place that code occurs
    ],
)
def test_code_right_of_the_cursor_bounds_the_continuation(doc, expected):
    assert found(doc) == expected


def test_a_match_that_opens_a_block_also_gives_the_block_reindented():
    doc = "    for k in keys:\n        out[k] = d[k]\n        n += 1\n    done()\nfor k in |"
    assert found(doc) == ["keys:\n    out[k] = d[k]\n    n += 1", "keys:"]
    assert found(doc, multiline=False) == ["keys:"]
    before, after = doc.split("|")
    assert [m.text for m in continuations(before, after)] == found(doc)  # blocks unless told otherwise


@pytest.mark.parametrize(
    "doc,expected",
    [
        # re-indented to the cursor's indent; a blank line inside the body stays empty (no trailing indent), blank
        # lines at its end are dropped
        (
            "for k in keys:\n    a(k)\n\n    b(k)\n\nz()\n  for k in |",
            ["keys:\n      a(k)\n\n      b(k)", "keys:"],
        ),
        ("for k in keys:\n    a(k)\n  \n    b(k)\n  for k in |", ["keys:\n      a(k)\n\n      b(k)", "keys:"]),
        # a line typed in full offers nothing, not even the body after its copy
        ("for k in keys:\n    use(k)\nfor k in keys:|", []),
    ],
)
def test_block_bodies(doc, expected):
    assert found(doc) == expected


def test_the_scan_reaches_scan_lines_below_the_cursor_and_no_further():
    filler = ["pass"] * (SCAN_LINES - 1)
    near = "y = ca|\n" + "\n".join([*filler, "y = call(last)", "y = call(beyond)"]) + "\n"
    assert found(near) == ["ll(last)"]
    far = "y = ca|\n" + "\n".join([*filler, "pass", "y = call(beyond)"]) + "\n"
    assert found(far) == []


def test_snippets_are_searched_after_the_document_and_limit_and_duplicates_apply():
    doc = "total = compute(a)\ntotal = |"
    snippets = ["total = frobnicate(b)\n", "total = compute(a)\ntotal = other()\n"]
    # other() follows a line equal to the cursor's previous line: a repeat outranks a bare prefix match
    assert found(doc, snippets) == ["other()", "compute(a)", "frobnicate(b)"]
    assert found(doc, snippets, limit=2) == ["other()", "compute(a)"]
    assert found("total = |", snippets) == ["frobnicate(b)", "compute(a)", "other()"]  # snippet order
    assert found(doc, snippets, limit=0) == []


def test_match_facts_for_the_score():
    (m,) = continuations("x0\nif a:\n    one()\nx0\nif a:\n    on", "", multiline=False)
    assert m == Match("e()", context=2, typed=2, source=0, distance=3)
    snippets = ["v = f(3)\n", "v = f(1)\nv = f(4)\n"]
    got = continuations("v = f(1)\nv = f(", "\nq\nv = f(2)\n", snippets, limit=5)
    assert got == [
        Match("4)", context=1, typed=6, source=2, distance=0),  # after a copy of the cursor's previous line
        Match("1)", context=0, typed=6, source=0, distance=1),  # the document's, not the second snippet's copy
        Match("2)", context=0, typed=6, source=0, distance=2),  # below the cursor
        Match("3)", context=0, typed=6, source=1, distance=0),
    ]


def m(context=0, typed=0, source=0, distance=0, text="x"):
    return Match(text, context, typed, source, distance)


@pytest.mark.parametrize(
    "better,worse",
    [
        (m(context=2), m(context=1, typed=9)),  # longer repeated context first
        (m(typed=3), m(typed=2)),  # more typed text matched
        (m(source=0, distance=9), m(source=1)),  # the document before snippets
        (m(source=1), m(source=2)),
        (m(distance=1), m(distance=2)),  # the nearest line
        (m(text="a:\n    b"), m(text="a:")),  # a block before its first line alone
        (m(text="a"), m(text="b")),  # then the text, so that the order is total
    ],
)
def test_match_order(better, worse):
    assert sorted([worse, better], key=Match.key) == [better, worse]
