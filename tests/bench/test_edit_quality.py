"""bench/edit_quality.py and bench/heldout/edit_tasks.py: the tasks have known results that parse, the judging
and the gate's calibration rule (tables)."""

import gzip
import json
from pathlib import Path

import pytest
from dcopilot.engine.tasks.syntax import parses
from edit_quality import Outcome, calibrate, judge, normalized, rates
from edit_tasks import KINDS, EditTask, build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tasks():
    with gzip.open(ROOT / "bench" / "heldout" / "sources.json.gz", "rb") as f:
        sources = json.loads(f.read())
    return sources, build(sources, per_kind=1)


def test_tasks_are_known_refactorings_that_parse(tasks):
    sources, built = tasks
    assert {t.kind for t in built} == set(KINDS)
    assert {t.language for t in built} == {"python", "typescript", "go", "rust"}
    assert {t.split for t in built} == {"calibration", "test"}
    for t in built:
        given = t.document[t.start : t.end]
        after = t.document[: t.start] + t.expected + t.document[t.end :]
        assert given != t.expected and parses(t.language, t.document) and parses(t.language, after), t.id
        # The selection is whole lines, and the rest of the file is the held-out source as it is.
        assert (t.start == 0 or t.document[t.start - 1] == "\n") and t.document[t.end - 1] == "\n"
        assert t.document[: t.start] == sources[t.file][: t.start]
        if t.kind in ("hints", "off_by_one"):  # the task undoes an injected change: the original is the answer
            assert after == sources[t.file]
    assert build(sources, per_kind=1) == built  # deterministic


def task(expected: str) -> EditTask:
    doc = "x = 1\ndef f(a):\n    return a\n"
    start = doc.index("def")
    return EditTask("t", "python", "hints", "test", "f.py", "add type hints", doc, start, len(doc), expected)


EXPECTED = "def f(a: int) -> int:\n    return a\n"


@pytest.mark.parametrize(
    ("new", "correct", "breaks"),
    [
        (None, False, False),  # nothing offered
        (EXPECTED, True, False),
        ("def f(a:int)->int:\n    return a\n", True, False),  # equal up to white space
        ("def f(a: int) -> int:\n  return a\n", True, False),  # re-indented: still parses, still equal
        ("def f(a: str) -> int:\n    return a\n", False, False),
        ("def f(a: int) -> int\n    return a\n", False, True),
    ],
)
def test_judge(new, correct, breaks):
    assert judge(task(EXPECTED), new) == (correct, breaks)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("a  =\n b", "a=b"), ("f( x, y )", "f(x,y)"), ("  def f ( ) :", "def f():"), ("a b", "a b")],
)
def test_normalized(text, expected):
    assert normalized(text) == expected


def out(score, correct, offered=True):
    return Outcome("t", "python", "rename", "calibration", offered, correct, False, score, "", 0.1)


@pytest.mark.parametrize(
    ("outcomes", "threshold"),
    [
        ([out(-1.0, True), out(-2.0, False), out(-3.0, True)], -1.0),  # +1 at -1.0 beats +1 at -3.0 (fewer offers)
        ([out(-1.0, True), out(-1.5, True), out(-2.0, False)], -1.5),
        ([out(-1.0, False), out(-2.0, False)], -0.99),  # nothing earns its place: above every score
        ([out(None, False, offered=False)], 0.0),
        ([], 0.0),
    ],
)
def test_calibrate(outcomes, threshold):
    assert calibrate(outcomes) == pytest.approx(threshold)


def test_rates():
    outcomes = [out(-1.0, True), out(-2.0, False), out(None, False, offered=False)]
    r = rates(outcomes, -1.5)
    assert (r["tasks"], r["offered"], r["correct"], r["breaks"]) == (3, 1, 1, 0)
    assert r["offered_rate"] == pytest.approx(1 / 3) and r["correct_rate"] == 1.0
