"""In-line edits never offer code that stops parsing: the engine drops such draws, and `dcopilot edit` prints either
a rewrite that parses or the reason there is none (exit status 0 either way; stdout holds only a diff).

Real models: the tiny random checkpoint (its draws are token soup, so the filter must act) and, when installed,
the embedded model on the example from the README's `dcopilot edit` row.
"""

import ast
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from dcopilot.engine.tasks.edit import BELOW_GATE, UNUSABLE, EditCandidate, refusal, rewrite
from dcopilot.engine.tasks.requests import EditRequest
from dcopilot.engine.tasks.syntax import breakage

from test_oneshot_eval import dcopilot

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = ROOT / "engine" / "embedded" / "model.safetensors"
ADD = "def add(a, b):\n    return a+b\n"


def draws(*dropped):
    return [[EditCandidate(f"x{i}", -1.0, d) for i, d in enumerate(chunk)] for chunk in dropped]


@pytest.mark.parametrize(
    ("kept_draws", "changed", "score", "min_score", "expected"),
    [
        (draws(), True, -0.5, -1.0, ""),  # a rewrite above the gate is offered
        (draws(), True, -1.0, -1.0, ""),  # at the threshold counts as above
        (
            draws(),
            True,
            -1.5,
            -1.0,
            f"no rewrite: {BELOW_GATE} (the best candidate scores -1.50, edit.min_score is -1.00)",
        ),
        (draws(), False, -0.5, -1.0, ""),  # the model kept the range: nothing to refuse
        (
            draws(["breaks the syntax", "breaks the syntax"]),
            False,
            None,
            -1.0,
            "no rewrite: every candidate breaks the syntax",
        ),
        (
            draws(["breaks the syntax", "deletes the code", UNUSABLE]),
            False,
            None,
            -1.0,
            f"no rewrite: every candidate breaks the syntax or deletes the code or {UNUSABLE}",
        ),
        # One chunk's draws all dropped, another rewritten above the gate: the rest is offered.
        (draws(["breaks the syntax"]), True, -0.5, -1.0, ""),
    ],
)
def test_refusal(kept_draws, changed, score, min_score, expected):
    assert refusal(kept_draws, changed, score, min_score) == expected


@pytest.fixture(scope="module")
def embedded_model():
    from dcopilot.engine.runtime.loader import load_model

    if not EMBEDDED.exists():
        pytest.skip("the embedded model is not installed (engine/embedded/model.safetensors)")
    return load_model(None, device="cpu", dtype=torch.float32)


@pytest.mark.parametrize("which", ["tiny", "embedded"])
@pytest.mark.parametrize("instruction", ["add type hints", ""])
def test_draws_that_break_the_syntax_are_never_chosen(which, instruction, request):
    model = request.getfixturevalue("tiny_model" if which == "tiny" else "embedded_model")
    doc = "import os\n\n" + ADD + "\nprint(add(1, 2))\n"
    start = doc.index("def")
    req = EditRequest(
        text=doc, start=start, end=start + len(ADD), instruction=instruction, language="python", min_score=-100.0
    )
    res = rewrite(model, req)
    (chunk,) = res.draws
    assert len(chunk) >= 1 and [d.score for d in chunk] == sorted((d.score for d in chunk), reverse=True)
    for d in chunk:  # each verdict is the syntax module's on the whole document
        if d.dropped != UNUSABLE:
            assert d.dropped == breakage("python", doc, doc.replace(ADD, d.text), ADD, d.text)
    passing = [d for d in chunk if d.dropped is None]
    if passing:
        assert res.rewritten == passing[0].text and res.score == passing[0].score and not res.refused
        ast.parse(doc[:start] + res.rewritten + doc[start + len(ADD) :])
    else:
        assert res.edits == [] and res.rewritten == ADD and res.refused.startswith("no rewrite: every candidate")
    if which == "tiny":
        # Random weights draw token soup: the filter has to act for the test to mean anything.
        assert any(d.dropped in ("breaks the syntax", "deletes the code") for d in chunk)


def test_gate_refuses_a_rewrite_below_edit_min_score(tiny_model):
    doc = "x = 1\n"
    # An unknown language (no parser) and a gate no score can pass (scores are <= 0): only the gate can refuse.
    req = EditRequest(text=doc, start=0, end=len(doc), language="", min_score=0.0)
    res = rewrite(tiny_model, req)
    assert res.score is not None and res.score < 0.0
    assert res.edits == [] and res.rewritten == doc and res.refused.startswith(f"no rewrite: {BELOW_GATE}")
    opened = rewrite(tiny_model, dataclasses.replace(req, min_score=-100.0))
    assert opened.edits and opened.score == res.score and not opened.refused  # the same draw, offered


# The tiny model with the gate open (so only the syntax filter can refuse), the embedded one with its default gate.
@pytest.mark.parametrize(("which", "min_score"), [("tiny", "-100"), ("embedded", None)])
def test_cli_edit_def_add_prints_parsing_code_or_why_not(which, min_score, tiny_checkpoint_dir, tmp_path):
    """The README's example: the output is a diff whose result parses, or no diff and a reason on stderr."""
    if which == "embedded" and not EMBEDDED.exists():
        pytest.skip("the embedded model is not installed (engine/embedded/model.safetensors)")
    src = tmp_path / "f.py"
    src.write_text(ADD, encoding="utf-8")
    args = ["edit", str(src), "--range", "1:1-2:15", "--instruction", "add type hints", "--device", "cpu"]
    if which == "tiny":
        args += ["--model", str(tiny_checkpoint_dir)]
    env = {} if min_score is None else {"DCOPILOT_EDIT_MIN_SCORE": min_score}
    plain = dcopilot(*args, cwd=tmp_path, **env)
    as_json = dcopilot(*args, "--json", cwd=tmp_path, **env)
    assert plain.returncode == 0 and as_json.returncode == 0, plain.stderr + as_json.stderr
    out = json.loads(as_json.stdout)
    new = ADD
    for e in sorted(out["edits"], key=lambda e: (e["start"]["line"], e["start"]["col"]), reverse=True):
        lines = new.splitlines(keepends=True)
        a = sum(map(len, lines[: e["start"]["line"] - 1])) + e["start"]["col"] - 1
        b = sum(map(len, lines[: e["end"]["line"] - 1])) + e["end"]["col"] - 1
        new = new[:a] + e["text"] + new[b:]
    ast.parse(new)  # whatever is offered parses
    if out["refused"]:
        assert out["edits"] == [] and plain.stdout == ""
        assert f"({out['refused']})" in plain.stderr
    elif out["edits"]:
        assert plain.stdout.startswith(f"--- {src}") and "+++" in plain.stdout
    if which == "tiny" and min_score is not None:
        assert out["refused"].startswith("no rewrite: every candidate"), out
    assert src.read_text() == ADD


def test_an_exact_refactoring_is_made_by_the_parser_without_the_model(tiny_model):
    doc = "import os\n\n\ndef f(a):\n    n = a + 1\n    return n * n\n\n\nn = 3\n"
    start, end = doc.index("def"), doc.index("\n\n\nn = 3")
    req = EditRequest(text=doc, start=start, end=end, language="python", instruction="rename `n` to `total`")
    res = rewrite(tiny_model, req)
    assert res.exact == "rename" and res.steps == 0 and res.canvases == 0 and res.score == 0.0 and not res.refused
    assert res.rewritten == "def f(a):\n    total = a + 1\n    return total * total"
    new = doc
    for e in sorted(res.edits, key=lambda e: -e.start):
        assert start <= e.start <= e.end <= end  # nothing outside the range: the n below keeps its name
        new = new[: e.start] + e.text + new[e.end :]
    assert new == doc.replace("n = a", "total = a").replace("n * n", "total * total")
    # a gate no model score passes lets the exact answer through (its score is 0.0: certain)
    assert rewrite(tiny_model, dataclasses.replace(req, min_score=0.0)).edits == res.edits
    # a parameter that would not parse (after **kwargs) is not made exactly: the model's draws are tried instead
    doc = "def f(a, **kw):\n    return a\n"
    req = EditRequest(
        text=doc, start=0, end=len(doc), language="python", instruction="add a parameter `b=1`", min_score=-100.0
    )
    res = rewrite(tiny_model, req)
    assert res.exact == "" and res.steps > 0 and res.canvases >= 1


def test_cli_edit_renames_exactly(tiny_checkpoint_dir, tmp_path):
    src = tmp_path / "f.py"
    src.write_text("def add(a, b):\n    s = a + b\n    return s\n", encoding="utf-8")
    args = ["edit", str(src), "--range", "1:1-3:13", "--instruction", "rename s to total", "--device", "cpu"]
    r = dcopilot(*args, "--model", str(tiny_checkpoint_dir), cwd=tmp_path)  # the default gate
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(" def add(a, b):\n-    s = a + b\n-    return s\n+    total = a + b\n+    return total\n")
    assert src.read_text() == "def add(a, b):\n    s = a + b\n    return s\n"
