"""The one-shot CLI commands and `dcopilot eval`, run as real processes against a tiny checkpoint on disk."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dcopilot.copilot.evaluate import Case, CaseError, edit_similarity, percentile, read_cases, score_case
from dcopilot.copilot.oneshot import offset_of, position_of

ROOT = Path(__file__).resolve().parents[2]


def dcopilot(*args, cwd=None, **extra_env):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XDG_CONFIG_HOME": str(cwd or ROOT / "nonexistent"), **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "dcopilot.copilot", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=240
    )


@pytest.mark.parametrize(
    "text,line,col,expected",
    [
        ("abc", 1, 1, 0),
        ("abc", 1, 4, 3),
        ("a\nbc", 2, 2, 3),
        ("a\r\nbc", 2, 1, 3),
        ("a\rbc", 2, 3, 4),
        ("é🙂\nx", 1, 3, 2),
    ],
)
def test_positions(text, line, col, expected):
    assert offset_of(text, line, col) == expected
    assert position_of(text, expected) == (line, col)


@pytest.mark.parametrize("line,col", [(3, 1), (1, 5), (0, 1)])
def test_positions_past_the_end(line, col):
    with pytest.raises(ValueError):
        offset_of("abc\nd", line, col)


@pytest.mark.parametrize(
    "pred,truth,expected",
    [("abc", "abc", 1.0), ("", "", 1.0), ("", "abcd", 0.0), ("abcd", "abed", 0.75)],
)
def test_edit_similarity(pred, truth, expected):
    assert edit_similarity(pred, truth) == pytest.approx(expected)


def test_score_case_counts_replaced_closers():
    case = Case(prefix="f(", suffix=")\n", target="x")
    assert score_case(case, "x)", 1) == (True, 1.0)
    assert score_case(case, "x", 0) == (True, 1.0)
    assert score_case(case, "y", 0)[0] is False
    assert score_case(case, None, 0) == (False, 0.0)
    assert score_case(Case(prefix="a", suffix="\n", target="b  "), "b", 0)[0] is True  # trailing spaces


def test_percentile():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([], 90) == 0.0


def test_bad_cases_file(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"prefix": "a"}\n')
    with pytest.raises(CaseError, match=r"c\.jsonl:1"):
        read_cases(p)


def test_complete_and_edit_commands(tiny_checkpoint_dir, fitted_checkpoint_dir, tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def add(a, b):\n    return a + b\n\nx = add(1, )\n", encoding="utf-8")
    args = ("complete", str(src), "--line", "4", "--col", "12", "--json", "--model", str(fitted_checkpoint_dir))
    r = dcopilot(*args, cwd=tmp_path, DCOPILOT_COMPLETION_MIN_SCORE="-100")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["steps"] >= 1 and out["prompt_format"] == "fim"
    for c in out["candidates"]:
        assert c["start"] == {"line": 4, "col": 12}
    # At the default gate the model's own answers cannot pass (its fit's ceiling): none is written, and with
    # nothing in the file to continue "x = add(1, " there is no candidate; the answer says why.
    r = dcopilot(*args, cwd=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["steps"] == 0 and out["candidates"] == []
    assert out["hidden"].startswith("no continuation from the workspace fits here, and the model's own completions")
    # A checkpoint without a fit of its own is not gated (its scores are no probability): it writes and shows,
    # and says so.
    unfitted = (*args[:-1], str(tiny_checkpoint_dir))
    r = dcopilot(*unfitted, cwd=tmp_path)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["steps"] >= 1 and out["candidates"] and out["hidden"] is None
    assert "has no score fit of its own (score_fit.json)" in r.stderr and "--write" in r.stderr
    r = dcopilot(
        "edit",
        str(src),
        "--range",
        "1:1-3:1",
        "--instruction",
        "add hints",
        "--json",
        "--model",
        str(tiny_checkpoint_dir),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    for e in json.loads(r.stdout)["edits"]:
        assert (e["start"]["line"], e["start"]["col"]) >= (1, 1) and (e["end"]["line"], e["end"]["col"]) <= (3, 1)
    assert src.read_text() == "def add(a, b):\n    return a + b\n\nx = add(1, )\n"  # the file is only read


def test_complete_hides_candidates_below_min_score(fitted_checkpoint_dir, tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def add(a, b):\n    return a + b\n\nx = add(1, )\n", encoding="utf-8")
    args = ("complete", str(src), "--line", "4", "--col", "12", "--model", str(fitted_checkpoint_dir))

    def run(min_score: float, *flags: str):
        return dcopilot(*args, *flags, cwd=tmp_path, DCOPILOT_COMPLETION_MIN_SCORE=repr(min_score))

    open_gate = json.loads(run(-100.0, "--json").stdout)
    scores = [c["score"] for c in open_gate["candidates"]]
    assert scores and open_gate["hidden"] is None
    best, worst = max(scores), min(scores)
    # At the lowest score every candidate passes; just above the best, none does and the reason is given.
    assert [c["score"] for c in json.loads(run(worst - 0.001, "--json").stdout)["candidates"]] == scores
    above = min(best + 0.01, 0.0)
    assert best < above, "a score at 0.0 leaves no threshold above it"
    shut = json.loads(run(above, "--json").stdout)
    assert shut["candidates"] == [] and shut["hidden"].startswith("best candidate's score ")
    r = run(above)
    assert r.returncode == 0 and r.stdout == ""
    assert f"is below completion.min_score {above:.2f}" in r.stderr and "(no completion: " in r.stderr


def test_eval_command(tiny_checkpoint_dir, tmp_path):
    cases = tmp_path / "cases.jsonl"
    rows = [
        {"prefix": "def f(x):\n    return ", "suffix": "\n", "target": "x", "kind": "line"},
        {"prefix": "y = f(", "suffix": ")\n", "target": "2"},
    ]
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = dcopilot(
        "eval",
        "--cases",
        str(cases),
        "--layout",
        "B",
        "--hypotheses",
        "2",
        "--model",
        str(tiny_checkpoint_dir),
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["layout"] == "B" and summary["hypotheses"] == 2 and summary["cases"] == 2
    assert 0.0 <= summary["edit_similarity"] <= 1.0 and summary["mean_steps"] >= 1
    assert "exact match" in r.stdout and "p95" in r.stdout
