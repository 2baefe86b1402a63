"""bench/quality.py: case sampling, baselines and metrics against hand-computed answers, the committed data, and
a run of the real embedded model through the server's in-process path."""

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest
import quality
from baselines import Bigram, Oracle, copy, empty, line_above
from cases import KINDS, sample_cases
from metrics import Scored, row, score
from systems import at_cursor, display_path

FIXTURE = """import os


def load(path):
    with open(path) as f:
        data = f.read()
    return data.split("\\n")


def save(path, lines):
    with open(path, "w") as f:
        f.write("\\n".join(lines))
    return len(lines)


class Store:
    def __init__(self, root):
        self.root = root
        self.items = {}

    def get(self, key):
        return self.items.get(key, None)

    def put(self, key, value):
        self.items[key] = value
        return value
"""


def fixture_sources():
    other = FIXTURE.replace("Store", "Cache").replace("items", "entries")
    return {
        "pkg@1.0/a.py": ("python", "pkg", FIXTURE),
        "pkg@1.0/b.py": ("python", "pkg", other),
        "pkg@1.0/c.py": ("python", "pkg", FIXTURE.replace("path", "name")),
    }


def test_sampling_is_deterministic_and_cuts_what_each_kind_promises():
    sources = fixture_sources()
    cases = sample_cases(sources, {"calibration": 3, "test": 3}, seed=7)
    assert cases == sample_cases(dict(reversed(list(sources.items()))), {"calibration": 3, "test": 3}, seed=7)
    assert cases != sample_cases(sources, {"calibration": 3, "test": 3}, seed=8)
    assert {c.kind for c in cases} == set(KINDS)
    by_split = {s: {c.file for c in cases if c.split == s} for s in ("calibration", "test")}
    assert by_split["calibration"] and by_split["test"] and not by_split["calibration"] & by_split["test"]
    for c in cases:
        text = sources[c.file][2]
        assert text[c.start : c.end] == c.target and c.target.strip() == c.target
        line_start = text.rfind("\n", 0, c.start) + 1
        line_end = text.find("\n", c.start)
        before, after = text[line_start : c.start], text[c.end : text.find("\n", c.end)]
        if c.kind in ("line", "block"):
            assert before.strip() == ""  # the cursor sits right after the indent
        else:
            assert before.strip()  # typed code left of the cursor
        if c.kind == "block":
            assert 2 <= c.target.count("\n") + 1 <= 6 and after == ""
        elif c.kind == "inside":
            assert after.strip() and c.end < line_end
        else:
            assert "\n" not in c.target and after.strip() == ""


DOC = "a = 1\nb = compute(a, 2)\nc = 3\nb = com"


@pytest.mark.parametrize(
    "fn, doc, kind, oracle, expected",
    [
        (empty, DOC, "rest", Oracle(1, 10), ""),
        # line above from the cursor's column: "c = 3"[7:] is empty
        (line_above, DOC, "rest", Oracle(1, 10), ""),
        (line_above, "x = foo(1, 2)\ny = foo(", "rest", Oracle(1, 5), "1, 2)"),
        (line_above, "x = foo(1, 2)\ny = foo(", "inside", Oracle(1, 2), "1,"),
        (line_above, "if a:\n    x = 1\n\n    ", "line", Oracle(1, 5), "x = 1"),
        (line_above, "def f():\n    a = 1\n    b = 2\n    ", "block", Oracle(2, 20), "a = 1\n    b = 2"),
        # copy: the continuation of the earlier line that starts like "b = com"
        (copy, DOC, "rest", Oracle(1, 10), "pute(a, 2)"),
        (copy, DOC, "inside", Oracle(1, 4), "pute"),
        # nothing typed: an earlier line after a line equal to the current previous line
        (copy, "if a:\n    go()\nx = 1\nif a:\n    ", "line", Oracle(1, 4), "go()"),
        (copy, "if a:\n    go()\n    stop()\nif a:\n        ", "block", Oracle(2, 20), "go()\n        stop()"),
        (copy, "x = 1\ny = 2\n", "line", Oracle(1, 5), ""),  # no equal previous line: nothing to copy
    ],
)
def test_baselines_on_hand_computed_examples(fn, doc, kind, oracle, expected):
    assert fn(doc, len(doc), kind, oracle) == expected


def test_bigram_greedy_counts_and_exclusion():
    m = Bigram()
    m.add("a.b\na.b\na.c\n")
    doc = "z = a."
    assert m.predict(doc, len(doc), "rest", Oracle(1, 10)) == "b"  # "." -> b twice, c once; stops at the line end
    assert m.predict(doc, len(doc), "rest", Oracle(1, 10), exclude="a.b\na.b\n") == "c"
    block = Bigram()
    block.add("x\ny\nx\ny\n")
    assert block.predict("x", 1, "block", Oracle(2, 10)) == "\ny"  # two lines, then stop


def test_score_and_rates_by_hand():
    doc, cursor = "v = \n", 4
    assert score(doc, cursor, "abcd", "abxd") == (True, False, 0.75)  # 1 substitution in 4
    assert score(doc, cursor, "abcd", "abcd") == (True, True, 1.0)
    assert score(doc, cursor, "abcd", "  ") == (False, False, 0.0)  # whitespace is not a visible suggestion
    assert score(doc, cursor, "abcd", None) == (False, False, 0.0)
    # "f(a)" replacing the auto-closed ")" right of the cursor is compared with the truth plus that ")"
    assert score("x = f()", 6, "a", "a)", replace=1) == (True, True, 1.0)
    items = [
        Scored("1", "py", "line", True, False, 0.8),
        Scored("2", "py", "line", True, False, 0.2),
        Scored("3", "py", "line", False, False, 0.0),
        Scored("4", "py", "line", True, True, 1.0),
    ]
    r = row(items)
    assert (r.n, r.es, r.em, r.shown) == (4, 0.5, 0.25, 0.75)
    assert (r.useful, r.noise, r.useful_all) == (pytest.approx(2 / 3), pytest.approx(1 / 3), 0.5)


@pytest.mark.parametrize(
    "text, cursor, new, start, end, expected",
    [
        ("ab|cd", 2, "X", 2, 2, ("X", 0)),
        ("foo()", 4, "a)", 4, 5, ("a)", 1)),
        ("ret", 3, "return x", 0, 3, ("urn x", 0)),  # an edit that retypes the word left of the cursor
        ("ret", 3, "yield x", 0, 3, (None, 0)),  # rewrites typed text: not a completion
    ],
)
def test_at_cursor(text, cursor, new, start, end, expected):
    assert at_cursor(text, cursor, new, start, end) == expected


def test_display_path_drops_versions_and_debian_trees():
    assert display_path("schedule@1.2.1/schedule/__init__.py") == "schedule/schedule/__init__.py"
    assert display_path("@tanstack/query-core@5.28.4/src/query.ts") == "tanstack-query-core/src/query.ts"
    assert display_path("librust-heck-dev@0.4.0-1/usr/share/cargo/registry/heck-0.4.0/src/lib.rs") == (
        "heck-0.4.0/src/lib.rs"
    )


def test_committed_data_match_the_manifest():
    heldout = Path(quality.HELDOUT)
    manifest = json.loads((heldout / "manifest.json").read_text())
    with gzip.open(heldout / "sources.json.gz", "rb") as f:
        sources = json.loads(f.read())
    files = [f for p in manifest["packages"] for f in p["files"]]
    assert sorted(f["key"] for f in files) == sorted(sources)
    for f in files:
        assert hashlib.sha256(sources[f["key"]].encode()).hexdigest() == f["sha256"], f["key"]
    cases, _ = quality.load(heldout / "cases.jsonl", heldout / "sources.json.gz")  # checks every target
    langs = {p["language"] for p in manifest["packages"]}
    assert langs == {"python", "typescript", "go", "rust"}
    for lang in langs:
        for kind in KINDS:
            assert sum(c.language == lang and c.kind == kind and c.split == "test" for c in cases) >= 25


def python_cases():
    heldout = Path(quality.HELDOUT)
    all_cases, sources = quality.load(heldout / "cases.jsonl", heldout / "sources.json.gz")
    cases = quality.select(all_cases, "test", ["python"], list(KINDS), 1)
    assert [c.kind for c in cases] == list(KINDS)
    return cases, sources, all_cases


@pytest.fixture
def no_user_config(monkeypatch, tmp_path):
    for name in [k for k in os.environ if k.startswith("DCOPILOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # defaults: the embedded model
    # The gate open: these tests compare paths and records on whatever the model offers, not its quality.
    monkeypatch.setenv("DCOPILOT_COMPLETION_MIN_SCORE", "-100")


def test_embedded_model_through_the_in_process_server_path(no_user_config):
    """A handful of held-out cases through EngineService and the server's filters with the real embedded model;
    every record is re-scored here from its prediction."""
    from dcopilot.copilot.config import load_config
    from systems import InProcess

    cases, sources, all_cases = python_cases()
    model = InProcess(load_config())
    try:
        assert "embedded" in model.describe()
        results = quality.run(cases, sources, all_cases, model)
    finally:
        model.close()
    assert set(results) == {"empty", "line_above", "copy", "bigram", "model"}
    recs = results["model"]
    assert [r["id"] for r in recs] == [c.id for c in cases]
    for r, c in zip(recs, cases, strict=True):
        doc, cursor = c.document(sources[c.file])
        assert (r["shown"], r["exact"], r["es"]) == score(doc, cursor, c.target, r["text"], r["replace"])
        assert r["seconds"] > 0
        assert (r["score"] is None) == (r["text"] is None)
    assert any(r["shown"] for r in recs)
    assert "| python | line | 1 |" in quality.render(results)


def test_server_flag_gives_the_in_process_suggestions(no_user_config):
    """--server: the same cases through a real `dcopilot serve` over stdio give the in-process path's answers."""
    from dcopilot.copilot.config import load_config
    from systems import InProcess, Server

    cases, sources, _ = python_cases()
    cases = cases[::2]  # line and inside: the in-process test covers every kind
    answers = {}
    for name, make in (("in-process", lambda: InProcess(load_config())), ("server", Server)):
        model = make()
        try:
            answers[name] = [model.complete(*c.document(sources[c.file]), c.language, c.file) for c in cases]
        finally:
            model.close()
    same = [(a.text, a.replace) for a in answers["server"]]
    assert same == [(a.text, a.replace) for a in answers["in-process"]]
    assert any(a.text for a in answers["server"])
    assert all(a.score is not None for a in answers["in-process"] if a.text)  # for a gate chosen on calibration
