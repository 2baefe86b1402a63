"""Edit diffs round-trip and stay inside the range."""

import random

import pytest

from engine.textdiff import TextEdit, apply_edits, diff_edits

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
    assert all(a.end < b.start for a, b in zip(edits, edits[1:]))


def test_edits_are_small_and_shifted_by_the_range_start():
    doc = "header\ndef f(x):\n    return x\nfooter\n"
    start = doc.index("def")
    end = doc.index("footer")
    edits = diff_edits(doc[start:end], "def f(x: int):\n    return x\n", base=start)
    assert edits == [TextEdit(start + len("def f(x"), start + len("def f(x"), ": int")]
    assert apply_edits(doc, edits) == "header\ndef f(x: int):\n    return x\nfooter\n"


def test_identical_text_has_no_edits():
    assert diff_edits("same\n", "same\n") == []


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


def test_apply_rejects_overlapping_edits():
    with pytest.raises(ValueError, match="overlaps"):
        apply_edits("abcdef", [TextEdit(0, 3, "x"), TextEdit(2, 4, "y")])
