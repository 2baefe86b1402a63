"""dcopilot.engine.runtime.static: the padded static view of the KV cache gives model.denoise's logits, the sampler's
tokens, and one compiled graph for every cache length in a bucket."""

import time
import warnings

import pytest
import torch
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.sampler import generate, sample
from dcopilot.engine.runtime.static import Buckets, StaticDenoise, static_step

VOCAB = 128  # tests/engine/conftest.py TINY_TEXT: sliding_window 8, so sliding layers show 7 cached rows
SMALL = Buckets(floor=4)  # buckets 4, 8, 16, 32 so that the tiny cache crosses them


@pytest.fixture(scope="module")
def model(reference_checkpoint):
    return load_model(reference_checkpoint)


def ids(shape, seed):
    return torch.randint(5, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


def close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


# cache lengths below, at and above the sliding window's visible rows (7), on and across bucket edges (8, 16)
@pytest.mark.parametrize("length", [1, 3, 7, 8, 9, 15, 16, 17, 30])
@pytest.mark.parametrize("cache_batch, batch", [(1, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("with_sc", [False, True])
def test_static_view_gives_model_denoise_logits(model, length, cache_batch, batch, with_sc):
    cache = model.encode(ids((cache_batch, length), length))
    canvas = ids((batch, 6), 100 + length)
    sc = torch.randn(batch, 6, VOCAB, generator=torch.Generator().manual_seed(length)) * 3 if with_sc else None
    static = StaticDenoise(model, compile=False, buckets=SMALL)
    close(static(canvas, cache, self_conditioning_logits=sc), model.denoise(canvas, cache, sc))
    view = static.view(cache)
    assert view.keys[2].shape[2] == SMALL(length) and view.keys[0].shape[2] == min(SMALL(length), 7)


def test_default_buckets_pad_a_short_cache_to_256_rows(model):
    cache = model.encode(ids((1, 5), 0))
    canvas = ids((2, 6), 1)
    static = StaticDenoise(model, compile=False)
    close(static(canvas, cache), model.denoise(canvas, cache))
    assert static.view(cache).keys[2].shape[2] == 256 and static.view(cache).keys[0].shape[2] == 7


def test_an_empty_cache_attends_to_the_canvas_only(model):
    from dcopilot.engine.runtime.cache import KVCache

    cache = KVCache(model.config)
    canvas = ids((1, 6), 2)
    close(StaticDenoise(model, compile=False, buckets=SMALL)(canvas, cache), model.denoise(canvas, cache))


def test_a_commit_updates_the_view_in_place_within_its_bucket_and_moves_to_a_new_one_past_it(model):
    static = StaticDenoise(model, compile=False, buckets=SMALL)
    cache = model.encode(ids((1, 9), 3))  # bucket 16
    canvas = ids((1, 4), 4)
    close(static(canvas, cache), model.denoise(canvas, cache))
    view = static.view(cache)
    addresses = [t.data_ptr() for t in view.tensors()]

    model.encode(canvas, cache)  # commit: 13 cached tokens, same bucket
    close(static(canvas, cache), model.denoise(canvas, cache))
    assert static.view(cache) is view and [t.data_ptr() for t in view.tensors()] == addresses
    assert int(view.start) == 13 and int(view.masks[False].sum()) == 13 and int(view.masks[True].sum()) == 7

    model.encode(canvas, cache)  # 17 tokens: bucket 32
    close(static(canvas, cache), model.denoise(canvas, cache))
    assert static.view(cache) is not view and static.view(cache).keys[2].shape[2] == 32

    shorter = model.encode(ids((1, 10), 5))  # back to bucket 16: the first view, refilled in place
    close(static(canvas, shorter), model.denoise(canvas, shorter))
    assert static.view(shorter) is view and [t.data_ptr() for t in view.tensors()] == addresses


@pytest.mark.parametrize("prompt", [24, 700])  # below and above the embedded model's 512-token sliding window
def test_sampler_and_generate_give_the_same_tokens_with_the_static_step(prompt):
    """The embedded (trained) model: the tiny random checkpoint's self-conditioning loop is chaotic (a 5e-6 logit
    difference grows to ~3 within four steps on identical canvases), so it cannot show token equality."""
    model = load_model(None)
    cache = model.encode(ids((1, prompt), prompt).clamp(max=model.config.vocab_size - 1))
    static = StaticDenoise(model, compile=False)
    for seed in (0, 1):
        a = sample(model, cache, 16, 3, denoise=static, generator=torch.Generator().manual_seed(seed))
        b = sample(model, cache, 16, 3, generator=torch.Generator().manual_seed(seed))
        assert a.stats.steps == b.stats.steps and torch.equal(a.tokens, b.tokens)
    # two canvases with a commit between them: the view follows the extended cache
    prompt_ids = ids((1, prompt), prompt + 1).clamp(max=model.config.vocab_size - 1)
    a = generate(model, prompt_ids, 32, denoise=static, generator=torch.Generator().manual_seed(2))
    b = generate(model, prompt_ids, 32, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.tokens, b.tokens) and len(a.stats) == len(b.stats)


@pytest.fixture(scope="module")
def bf16_model(reference_checkpoint):
    """Compiled tests run in bfloat16: torch._grouped_mm (the experts) traces only for bf16 inputs."""
    return load_model(reference_checkpoint, dtype=torch.bfloat16)


def close_bf16(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=0, atol=0.02 * expected.abs().max().item())


def test_one_graph_per_bucket_and_first_step_or_not(bf16_model):
    """A counting backend (no inductor, fast): lengths 9..16 share a graph; a new bucket compiles one more."""
    model = bf16_model
    torch._dynamo.reset()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    static = StaticDenoise(model, backend=backend, buckets=SMALL)
    eager = StaticDenoise(model, compile=False, buckets=SMALL)
    canvas = ids((2, 6), 7)
    sc = torch.randn(2, 6, VOCAB, generator=torch.Generator().manual_seed(7))
    for length in (9, 12, 16):
        cache = model.encode(ids((1, length), length))
        close(static(canvas, cache), eager(canvas, cache))
        close(static(canvas, cache, self_conditioning_logits=sc), eager(canvas, cache, sc))
        close_bf16(static(canvas, cache, self_conditioning_logits=sc), model.denoise(canvas, cache, sc))
    assert len(graphs) == 2 and not static.failed
    cache = model.encode(ids((1, 20), 20))
    close(static(canvas, cache), eager(canvas, cache))
    assert len(graphs) == 3


def test_a_failing_compile_warns_once_and_runs_eager(model):
    torch._dynamo.reset()

    def broken(gm, example_inputs):
        raise RuntimeError("no compiler here")

    static = StaticDenoise(model, backend=broken, buckets=SMALL)
    cache = model.encode(ids((1, 9), 8))
    canvas = ids((1, 6), 9)
    with pytest.warns(RuntimeWarning, match="running eager"):
        close(static(canvas, cache), model.denoise(canvas, cache))
    assert static.failed
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        close(static(canvas, cache), model.denoise(canvas, cache))
    assert not later


@pytest.mark.parametrize(
    ("options", "graphs"),
    [({"mode": "reduce-overhead"}, True), ({"mode": "default"}, False), ({"compile": False}, False)],
)
def test_under_cuda_graphs_each_step_is_marked_and_returns_its_own_copy(model, monkeypatch, options, graphs):
    """Under CUDA graphs a step's output lives in the graph's memory, which the next replay overwrites: the sampler
    must get a copy, and each call must start a new step (else the tree records a new graph at every step)."""
    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(len(marks)))
    static = StaticDenoise(model, buckets=SMALL, **options)
    assert static.graphs is graphs
    produced = []

    def step(*args):
        produced.append(static_step(model, *args))
        return produced[-1]

    static.step = step
    cache = model.encode(ids((1, 9), 8))
    canvas = ids((1, 6), 9)
    for calls in (1, 2):
        out = static(canvas, cache)
        close(out, model.denoise(canvas, cache))
        assert (out.data_ptr() != produced[-1].data_ptr()) is graphs
        assert len(marks) == (calls if graphs else 0)


@pytest.mark.slow  # ~65 s on one thread (inductor compile); the counting-backend test above runs by default
def test_inductor_compiles_once_for_two_lengths_in_a_bucket(bf16_model):
    """torch.compile default mode (inductor) on CPU: lengths 10 and 14 (bucket 16) reuse one graph and match the
    eager step. Inductor keeps bf16 intermediates in float32, which flips near-tied expert choices of the random
    model; emulate_precision_casts rounds as eager does, so the comparison can be tight."""
    from torch._dynamo.utils import counters

    model = bf16_model
    torch._dynamo.reset()
    counters.clear()
    started = time.perf_counter()
    static = StaticDenoise(model, buckets=SMALL)
    eager = StaticDenoise(model, compile=False, buckets=SMALL)
    canvas = ids((1, 6), 10)
    with torch._inductor.config.patch(emulate_precision_casts=True):
        for length in (10, 14):
            cache = model.encode(ids((1, length), length))
            close(static(canvas, cache), eager(canvas, cache))
            if length == 10:
                graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1 and counters["stats"]["unique_graphs"] == graphs and not static.failed
    print(f"inductor compile + 2 steps: {time.perf_counter() - started:.1f} s")


def test_infill_and_edit_take_the_static_step():
    """dcopilot.engine.tasks.infill.run_infill (step loop and scoring pass) and dcopilot.engine.tasks.edit.rewrite with
    the static step give what they give without it (embedded model, eager step)."""
    from dcopilot.engine.tasks.edit import EditRequest, rewrite
    from dcopilot.engine.tasks.infill import InfillRequest, run_infill

    model = load_model(None)
    static = StaticDenoise(model, compile=False)
    calls = []

    def counted(canvas, cache, self_conditioning_logits=None):
        calls.append(canvas.shape)
        return static(canvas, cache, self_conditioning_logits)

    text = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return \n"
    req = InfillRequest(text=text, cursor=text.index("return \n") + 7, max_tokens=8)
    a, b = run_infill(model, req, denoise=counted), run_infill(model, req)
    assert a.canvases == b.canvases and len(calls) == a.steps + 1  # + the scoring pass
    assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
    assert [c.score for c in a.candidates] == pytest.approx([c.score for c in b.candidates], rel=1e-5)
    edit = EditRequest(text=text, start=0, end=text.index("\n") + 1, instruction="rename")
    assert rewrite(model, edit, denoise=counted).rewritten == rewrite(model, edit).rewritten


@pytest.mark.parametrize("setting, expected", [("off", None), ("auto", None), ("on", StaticDenoise)])
def test_the_daemon_compiles_the_step_on_cuda_or_when_told(model, setting, expected):
    from dcopilot.copilot.service import static_denoise

    made = static_denoise(model, setting)  # model on CPU: auto leaves it eager
    assert made is None if expected is None else isinstance(made, expected)
