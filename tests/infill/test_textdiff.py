"""Edit diffs: exact minimal hunks (tables worked out by hand), round trips and hunk laws (hypothesis), and
apply_edits' refusal of edits that overlap, are reversed or lie past the text."""

import itertools
import random

import pytest
from dcopilot.engine.tasks.textdiff import TextEdit, apply_edits, diff_edits
from hypothesis import given
from hypothesis import strategies as st

# Survivors of `python scripts/mutation.py engine/tasks/textdiff.py` that cannot change behaviour:
# (function, mutated line, why). The runner marks a survivor equivalent only when it is listed here.
EQUIVALENT_MUTANTS = [
    ("diff_edits", "matcher = difflib.SequenceMatcher(None, a, b, autojunk=None)", "None is as false as False"),
]

CASES = [
    ("", ""),
    ("", "new\n"),
    ("old\n", ""),
    ("def f(x):\n    return x\n", "def f(x: int) -> int:\n    return x\n"),
    ("a\nb\nc\n", "a\nB\nc\n"),
    ("a\r\nb\r\n", "a\r\nbb\r\n"),
    ("héllo 🙂\n", "hello 🙂!\n"),
    ("x = 1", "x = 1"),
    ("one\ntwo\nthree\nfour\n", "zero\none\nthree\nfour\nfive\n"),
]


@pytest.mark.parametrize("original,rewritten", CASES)
def test_edits_round_trip(original, rewritten):
    edits = diff_edits(original, rewritten)
    assert apply_edits(original, edits) == rewritten
    for e in edits:
        assert 0 <= e.start <= e.end <= len(original)
    assert all(a.end < b.start for a, b in itertools.pairwise(edits))


@pytest.mark.parametrize(
    "original,rewritten,expected",
    [
        ("xay", "xby", [TextEdit(1, 2, "b")]),  # common head and tail trimmed inside one line
        ("abXcd", "abYYcd", [TextEdit(2, 3, "YY")]),
        ("aa", "aaa", [TextEdit(2, 2, "a")]),  # head and tail may not overlap: one "a" inserted at the end
        ("aaa", "a", [TextEdit(1, 3, "")]),
        ("a\nb\nc\nd\n", "A\nb\nc\nD\n", [TextEdit(0, 1, "A"), TextEdit(6, 7, "D")]),  # two hunks, lines apart
        ("keep\ndrop\nkeep2\n", "keep\nkeep2\n", [TextEdit(5, 10, "")]),
        ("a\r\nb\r\n", "a\r\nbb\r\n", [TextEdit(4, 4, "b")]),
        ("x = 1", "x = 1", []),
    ],
)
def test_edits_are_the_minimal_hunks(original, rewritten, expected):
    assert diff_edits(original, rewritten) == expected


def test_edits_are_small_and_shifted_by_the_range_start():
    doc = "header\ndef f(x):\n    return x\nfooter\n"
    start = doc.index("def")
    end = doc.index("footer")
    edits = diff_edits(doc[start:end], "def f(x: int):\n    return x\n", base=start)
    assert edits == [TextEdit(start + len("def f(x"), start + len("def f(x"), ": int")]
    assert apply_edits(doc, edits) == "header\ndef f(x: int):\n    return x\nfooter\n"


def test_identical_text_has_no_edits():
    assert diff_edits("same\n", "same\n") == []


TEXT = st.text(alphabet="ab \n\r\t(é🙂", max_size=40)


@given(TEXT, TEXT, st.integers(0, 50))
def test_hunk_laws(a, b, base):
    edits = diff_edits(a, b, base=base)
    shifted = [TextEdit(e.start - base, e.end - base, e.text) for e in edits]
    assert apply_edits(a, shifted) == b
    assert all(base <= e.start <= e.end <= base + len(a) for e in edits)
    assert all(x.end < y.start for x, y in itertools.pairwise(edits))  # unchanged text between hunks
    for e in shifted:
        old = a[e.start : e.end]
        assert old != e.text  # every hunk changes something
        if old and e.text:  # trimmed: the replaced and the new text differ at both ends
            assert old[0] != e.text[0] and old[-1] != e.text[-1]


def test_random_round_trips():
    rng = random.Random(7)
    alphabet = "ab \n\t(é"
    for _ in range(300):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        edits = diff_edits(a, b, base=5)
        shifted = [TextEdit(e.start - 5, e.end - 5, e.text) for e in edits]
        assert apply_edits(a, shifted) == b
        assert all(5 <= e.start <= e.end <= 5 + len(a) for e in edits)


@pytest.mark.parametrize(
    "edits,expected",
    [
        ([TextEdit(0, 2, "x"), TextEdit(2, 3, "y")], "xydef"),  # touching edits are fine
        ([TextEdit(6, 6, "!")], "abcdef!"),  # at the very end
        ([TextEdit(1, 1, "+"), TextEdit(4, 6, "")], "a+bcd"),
        ([], "abcdef"),
    ],
)
def test_apply_edits(edits, expected):
    assert apply_edits("abcdef", edits) == expected


@pytest.mark.parametrize(
    "edits",
    [
        [TextEdit(0, 3, "x"), TextEdit(2, 4, "y")],  # overlapping
        [TextEdit(3, 2, "x")],  # reversed
        [TextEdit(4, 7, "x")],  # past the end
        [TextEdit(2, 3, "x"), TextEdit(0, 1, "y")],  # out of order
    ],
)
def test_apply_rejects_bad_edits(edits):
    with pytest.raises(ValueError, match="overlaps, is reversed or lies past the text end"):
        apply_edits("abcdef", edits)


def test_long_files_of_repeated_lines_are_still_diffed_line_by_line():
    # difflib's autojunk heuristic would treat a line making up over 1% of a 200+ line text as noise and
    # answer one edit spanning the whole file
    original = "}\n" * 150 + "x\n" + "}\n" * 60
    rewritten = "y\n" + "}\n" * 210
    assert diff_edits(original, rewritten) == [TextEdit(0, 0, "y\n"), TextEdit(300, 302, "")]
