"""scripts/gpu_check.sh --tiny on the CPU: every item of both parts runs at toy size, writes the summary table and
JSON, and reports (never hides) what it could not do; a failing item does not stop the ones after it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    # the test's own interpreter (the project's venv), the CPU, and no carried wheels
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--out", str(out), "--tiny", "--no-carry", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=330,
    )


def rows(summary: dict, item: str) -> dict[str, dict]:
    found = next(i for i in summary["items"] if i["item"] == item)
    assert found["status"] == "ok", (item, found["status"], found["notes"])
    return {r["check"]: r for r in found["rows"]}


@pytest.mark.timeout(360)
def test_core_part_at_toy_size(tmp_path):
    proc = gpu_check(tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert proc.returncode == 0 and summary["ok"], proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [i["item"] for i in summary["items"]] == ["env", "parity", "gpu_step", "editor"]

    assert rows(summary, "env")["reference"]["value"] == "available"
    parity = rows(summary, "parity")
    checks = [r for name, r in parity.items() if name.startswith(("ours float32", "bfloat16", "static step"))]
    assert len(checks) == 4 and all(r["ok"] is True for r in checks)
    static32 = next(r for name, r in parity.items() if name.startswith("static step vs eager, float32"))
    assert float(static32["value"]) <= 1e-4  # the same arithmetic: any stale buffer would show here

    step = rows(summary, "gpu_step")
    for name in ("reference", "ours-eager", "ours-static", "sample-loop-static"):
        assert float(step[f"{name} ms/step"]["value"].split()[0]) > 0
    assert "bandwidth floor" in step

    editor = rows(summary, "editor")
    assert editor["shapes compiled while serving"]["value"] == "0"  # every request ran a warmed-up shape
    served = json.loads((tmp_path / "editor" / "lsp_latency.json").read_text())
    assert served["answered_count"] >= 1 and served["status"]["state"] == "ready"
    status = served["status"]  # the server compiled its step before it said ready, and said so
    assert status["step"] == "compiled" and status["stepGraphs"] >= 2 and status["stepCompileSeconds"] > 0
    assert status["message"].startswith("model ready; denoise step compiled for")

    table = (tmp_path / "summary.md").read_text()
    assert table.startswith("# GPU check, part core (--tiny)") and "| item | check | value | target | ok |" in table
    assert "| editor | keystroke to ghost text p50 / p95 |" in table


@pytest.mark.timeout(300)
def test_nf4_part_at_toy_size(tmp_path):
    proc = gpu_check(tmp_path, "--part", "nf4")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert proc.returncode == 0 and summary["ok"], proc.stdout[-3000:] + proc.stderr[-3000:]
    nf4 = rows(summary, "nf4")
    assert {"ours-nf4 ms/step", "sample-loop-nf4 ms/step", "nf4-static ms/step", "nf4 weights"} <= nf4.keys()


def test_an_item_that_times_out_is_reported_and_the_next_still_runs(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    from bench import gpu_check as check

    monkeypatch.setitem(check.PARTS, "probe", {"parity": (0.5, 0.5), "env": (60, 60)})
    results = check.run_part("probe", tmp_path, tiny=True)
    assert [(r.item, r.status) for r in results] == [("parity", "timeout"), ("env", "ok")]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert not summary["ok"] and "stopped after its 0.5 s limit" in (tmp_path / "summary.md").read_text()


def test_an_editor_session_whose_requests_fail_stops_early_and_says_why(tmp_path, monkeypatch):
    """As on the first GPU machine: the server starts, but every model request fails on a missing package. The item
    stops after a few failures (device time is scarce) and names the error, instead of typing until its limit."""
    sys.path.insert(0, str(ROOT))
    from bench import gpu_check as check

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.partition('.')[0] == 'tree_sitter':\n"
        "            raise ImportError('No module named tree_sitter (blocked by the test)')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(bare))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setitem(check.PARTS, "probe", {"editor": (120, 120)})
    (result,) = check.run_part("probe", tmp_path, tiny=True)
    assert result.status == "failed" and result.seconds < 100
    assert any("model requests fail" in n and "tree_sitter" in n for n in result.notes), result.notes
