"""bench/quality_gate.py, promotion's second judge, on real checkpoints: the shipped model against itself (not
better), against an untrained model of its shape (better), and a missing candidate (an error)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights
from dcopilot.engine.tasks.layout import fim_specials
from dcopilot.engine.training.sizes import SIZES
from dcopilot.engine.training.train import TrainConfig, default_generation, write_checkpoint
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = ROOT / "engine" / "embedded"


def gate(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "bench" / "quality_gate.py"), "--limit", "2", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> Path:
    tok = Tokenizer.from_file(str(EMBEDDED / "tokenizer.json"))
    ids = fim_specials(tok)
    model = DiffusionGemma(SIZES["5m"].text_config(ids))
    init_weights(model, generator=torch.Generator().manual_seed(0))
    out = tmp_path_factory.mktemp("untrained") / "checkpoint"
    write_checkpoint(out, model, tok, TrainConfig(), {}, default_generation(ids, tok.token_to_id("<mask>")))
    return out


def test_the_shipped_model_is_not_better_than_itself(tmp_path):
    proc = gate("--candidate", str(EMBEDDED), "--out", str(tmp_path / "v.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    v = json.loads((tmp_path / "v.json").read_text())
    assert v["candidate"] == v["shipped"] and not v["passed"] and v["shipped"]["all"] > 0
    assert set(v["shipped"]) == {"all", "go", "python", "rust", "typescript"}


def test_the_trained_model_beats_an_untrained_one(tmp_path, untrained):
    proc = gate("--candidate", str(EMBEDDED), "--shipped", str(untrained), "--out", str(tmp_path / "v.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    v = json.loads((tmp_path / "v.json").read_text())
    assert v["passed"] and v["candidate"]["all"] > v["shipped"]["all"] + v["margin"]
    assert "suggests better" in proc.stdout
    backwards = gate("--candidate", str(untrained), "--shipped", str(EMBEDDED))
    assert backwards.returncode == 1 and "does not suggest better" in backwards.stdout


def test_a_missing_candidate_is_an_error(tmp_path):
    proc = gate("--candidate", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "quality_gate: bench/quality.py failed" in proc.stderr
