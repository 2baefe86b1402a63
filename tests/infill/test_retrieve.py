"""Candidates from context (dcopilot.engine.tasks.retrieve.continuations), as tables: `|` marks the cursor."""

import pytest
from dcopilot.engine.tasks.retrieve import continuations


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
        ("y = call(far)\n\n\n\ny = call(near)\ny = ca|", ["ll(near)", "ll(far)"]),
        # the indent does not matter, the typed text does
        ("def f():\n    return g(1)\nreturn g|", ["(1)"]),
        # nothing longer than what is typed: nothing
        ("x = 1\nx = 1|", []),
        ("x = 1\ny|", []),
        # nothing typed: the line after an earlier copy of the previous line (a repeated structure)
        ("if a:\n    run(a)\nif a:\n    |", ["run(a)"]),
        ("if a:\n    run(a)\nif b:\n    |", []),  # previous line differs: no repeat to follow
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
    ],
)
def test_code_right_of_the_cursor_bounds_the_continuation(doc, expected):
    assert found(doc) == expected


def test_a_match_that_opens_a_block_also_gives_the_block_reindented():
    doc = "    for k in keys:\n        out[k] = d[k]\n        n += 1\n    done()\nfor k in |"
    assert found(doc) == ["keys:\n    out[k] = d[k]\n    n += 1", "keys:"]
    assert found(doc, multiline=False) == ["keys:"]


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
    assert (m.text, m.context, m.typed, m.source) == ("e()", 2, 2, 0)
