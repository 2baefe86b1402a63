"""Loading with a compiled step compiles every shape completions use before the server says ready, so the first
completions after ready compile nothing (the daemon's path on CUDA, forced on here with model.compile = "on").

A counting torch.compile backend stands in for inductor: dynamo traces and guards exactly as it does before
inductor, so a shape the warm-up missed shows up as one more graph; inductor itself would take minutes on CPU."""

import pytest
import torch
from dcopilot.copilot.config import load_config
from dcopilot.copilot.requests import infill_request
from dcopilot.copilot.service import EngineBackend
from dcopilot.engine.runtime.static import Buckets, StaticDenoise, StepShape, warm_up
from dcopilot.engine.tasks.infill import step_shapes
from dcopilot.engine.tasks.requests import RETRIEVED
from dcopilot.lsp.service import CompletionRequest

# as on CUDA (dtype auto): the grouped expert matmul compiles for bfloat16 only
BF16 = {"DCOPILOT_MODEL_DTYPE": "bfloat16"}

TEXT = '''import os


def read_lines(path):
    """Return the lines of a text file."""
    with open(path) as handle:
        return handle.read().splitlines()


def count_words(text):
    words = text.split()
    return len(words)


def main():
    for name in os.listdir("."):
        print(name, count_words(open(name).read()))
'''


def counting_backend():
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    return backend, graphs


def request(cursor: str, n: int = 0, multiline: str = "auto") -> CompletionRequest:
    offset = TEXT.index(cursor) + len(cursor)
    return CompletionRequest(
        key="file:///t.py",
        uri="file:///t.py",
        path="t.py",
        language_id="python",
        version=n,
        text=TEXT,
        offset=offset,
        max_tokens=64,
        hypotheses=3,
        multiline=multiline,
    )


def test_loading_compiles_the_completion_shapes_before_ready_and_the_first_requests_compile_nothing(isolated):
    torch._dynamo.reset()
    backend, graphs = counting_backend()
    # the GPU's completion shape (the requests below ask for it), compiled on the CPU
    gpu_shape = {"DCOPILOT_COMPLETION_MAX_TOKENS": "64", "DCOPILOT_COMPLETION_HYPOTHESES": "3"}
    config = load_config(env={"DCOPILOT_MODEL_COMPILE": "on", "DCOPILOT_MODEL_DEVICE": "cpu", **BF16, **gpu_shape})
    engine = EngineBackend(config, compile_backend=backend)
    reports = []
    model = engine.load(lambda fraction, message: reports.append((fraction, message)))

    assert isinstance(engine.denoise, StaticDenoise) and not engine.denoise.failed
    shapes, longest = step_shapes(model, infill_request(config, text="", cursor=0))
    buckets = Buckets().upto(longest)
    # single- and multi-line canvases, each with its scoring pass (every row twice, plus the retrieved candidates'
    # rows); prompts capped at 256 tokens
    assert sorted((s.batch, s.sampled) for s in shapes) == [(3, True)] * 2 + [(2 * (3 + RETRIEVED), False)] * 2
    assert buckets == [256]
    w = engine.warmup
    # a sampled shape has two graphs (the first step and the self-conditioned one), a scoring-only shape one
    per_bucket = sum(2 if s.sampled else 1 for s in shapes)
    assert w.graphs == per_bucket * len(buckets) and len(graphs) >= w.graphs and not w.failed
    messages = [m for _, m in reports]
    assert any(m.startswith("compiling the denoise step: 1/") for m in messages)
    assert messages[-1].startswith(f"denoise step compiled for {w.graphs} shapes in ")
    assert [f for f, _ in reports] == sorted(f for f, _ in reports) and reports[-1][0] == 1.0
    details = engine.ready_details(model)
    assert details.step == "compiled" and details.step_graphs == w.graphs
    assert "compiled for" in details.message

    compiled = len(graphs)
    # end of a line with code after it (single line), an empty line in a function body (multi-line), mid-word
    for n, cursor in enumerate(["words = text.split()", "        return handle.read().splitlines()\n", "print(na"]):
        engine.complete(model, request(cursor, n), cancel=lambda: False)
    assert len(graphs) == compiled, "a completion compiled a shape the warm-up did not"
    assert engine.denoise.cold == 0


def test_a_shape_missed_by_the_warm_up_is_counted_and_logged(reference_checkpoint, caplog):
    from dcopilot.engine.runtime.loader import load_model

    torch._dynamo.reset()
    backend, _graphs = counting_backend()
    model = load_model(reference_checkpoint, dtype=torch.bfloat16)
    static = StaticDenoise(model, backend=backend, buckets=Buckets(floor=8))
    w = warm_up(model, static, [StepShape(2, 6)], max_prompt=8, runs=2)
    assert (w.graphs, w.failed, static.cold) == (2, "", 0)
    cache = model.encode(torch.randint(5, 128, (1, 5)))
    static(torch.randint(5, 128, (2, 6)), cache)  # bucket 8, warmed
    assert static.cold == 0
    with caplog.at_level("WARNING", logger="dcopilot.engine"):
        static(torch.randint(5, 128, (1, 6)), cache)  # batch 1 was not
    assert static.cold == 1 and "was not warmed up" in caplog.text


def test_a_compile_failure_during_warm_up_falls_back_to_eager_with_one_warning(isolated, caplog):
    torch._dynamo.reset()

    def broken(gm, example_inputs):
        raise RuntimeError("no compiler here")

    config = load_config(
        env={
            "DCOPILOT_MODEL_COMPILE": "on",
            "DCOPILOT_MODEL_DEVICE": "cpu",
            "DCOPILOT_COMPLETION_MULTILINE": "never",
            **BF16,
        }
    )
    engine = EngineBackend(config, compile_backend=broken)
    reports = []
    with caplog.at_level("WARNING"):
        model = engine.load(lambda fraction, message: reports.append(message))
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "running eager" in warnings[0].getMessage()
    assert engine.denoise.failed and "no compiler here" in reports[-1]
    assert engine.ready_details(model).step == "eager"
    assert engine.complete(model, request("words = text.split()"), cancel=lambda: False) is not None


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No user config file and no DCOPILOT_* variables leak into load_config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in list(__import__("os").environ):
        if name.startswith("DCOPILOT_"):
            monkeypatch.delenv(name)


def test_layout_a_warms_the_scoring_pass_too_and_a_short_suffix_keeps_its_shape(tmp_path, isolated):
    """DiffusionGemma's layout A: the step loop's canvas holds no suffix, the scoring pass k suffix slots; at the
    end of a file (no suffix tokens) the scoring canvas keeps that length (pads before the tail)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench.checkpoints import TOY_LAYOUT_TEXT, write_layout_checkpoint

    path = write_layout_checkpoint(tmp_path / "a", TOY_LAYOUT_TEXT, "cpu", steps=2)
    torch._dynamo.reset()
    backend, graphs = counting_backend()
    config = load_config(
        env={
            "DCOPILOT_MODEL_COMPILE": "on",
            "DCOPILOT_MODEL_DEVICE": "cpu",
            **BF16,
            "DCOPILOT_MODEL_PATH": str(path),
            "DCOPILOT_COMPLETION_CONTEXT_TOKENS": "200",
            "DCOPILOT_COMPLETION_MULTILINE": "always",
            "DCOPILOT_COMPLETION_MAX_TOKENS": "64",  # the GPU's shape, as the requests below
            "DCOPILOT_COMPLETION_HYPOTHESES": "3",
        }
    )
    engine = EngineBackend(config, compile_backend=backend)
    model = engine.load(lambda fraction, message: None)
    assert sorted(
        (s.batch, s.canvas, s.sampled) for s in step_shapes(model, infill_request(config, text="", cursor=0))[0]
    ) == [(3, 65, True), (2 * (3 + RETRIEVED), 73, False)]
    assert engine.warmup.graphs == 3 and not engine.warmup.failed
    compiled = len(graphs)
    at_end = CompletionRequest(
        key="file:///e.py",
        uri="file:///e.py",
        path="e.py",
        language_id="python",
        version=1,
        text=TEXT,
        offset=len(TEXT) - 1,
        max_tokens=64,
        hypotheses=3,
        multiline="always",
    )
    for req in (request("def count_words(text):\n", multiline="always"), at_end):
        engine.complete(model, req, cancel=lambda: False)
    assert len(graphs) == compiled and engine.denoise.cold == 0
