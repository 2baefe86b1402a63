import random

import pytest
from dcopilot.engine.tasks.layout import fim_specials
from dcopilot.engine.training.fim_data import (
    ExampleSampler,
    Span,
    TooShort,
    ar_sequence,
    build_canvas,
    build_prompt,
    collate,
    fill_budget,
    make_example,
    sample_span,
)

TEXT = (
    "import os\n\n\n"
    "def walk(root):\n"
    "    for name in sorted(os.listdir(root)):\n"
    "        path = os.path.join(root, name)\n"
    "        if os.path.isdir(path):\n"
    "            yield from walk(path)\n"
    "        else:\n"
    "            yield path\n"
)


@pytest.fixture(scope="module")
def ids(small_tok):
    return fim_specials(small_tok)


def _decode(tok, ids_):
    return tok.decode(ids_, skip_special_tokens=False)


@pytest.mark.parametrize("layout", ["A", "B", "C"])
def test_example_layout_invariants(small_tok, ids, layout):
    span = Span("line", TEXT.index("sorted("), TEXT.index(":\n        path"))
    P, L, K = 24, 24, 5
    ex = make_example(small_tok, ids, "pkg/walk.py", TEXT, span, layout, P, L, K, suffix_share=0.4)
    middle = small_tok.encode(TEXT[span.start : span.end]).ids
    suffix = small_tok.encode(TEXT[span.end :]).ids
    assert len(ex.prompt) == P and len(ex.canvas) == L and len(ex.pinned) == L
    # prompt structure
    assert ex.prompt[:2] == [ids.bos, ids.file]
    assert ex.prompt[-1] == ids.fim_middle
    assert (ids.fim_suffix in ex.prompt) == (layout in ("A", "C"))
    fp = ex.prompt.index(ids.fim_prefix)
    # the prefix part ends exactly at the cursor
    assert TEXT[: span.start].endswith(_decode(small_tok, ex.prompt[fp + 1 : -1]))
    if layout != "B":
        fs = ex.prompt.index(ids.fim_suffix)
        assert fs < fp
        assert TEXT[span.end :].startswith(_decode(small_tok, ex.prompt[fs + 1 : fp]))
    # canvas: middle, eos, pads, pinned suffix head
    n = len(middle)
    assert ex.n_middle == n and ex.canvas[:n] == middle and ex.canvas[n] == ids.eos
    k = K if layout != "A" else 0
    assert all(t == ids.pad for t in ex.canvas[n + 1 : L - k])
    assert ex.pinned == [False] * (L - k) + [True] * k
    if k:
        assert ex.canvas[L - k :] == suffix[:k]


def test_prompt_too_short_is_refused(small_tok, ids):
    span = Span("line", 0, 9)
    with pytest.raises(TooShort):
        make_example(small_tok, ids, "a.py", TEXT, span, "B", 200, 24, 4)  # no prefix at all before offset 0


def test_fill_budget_exact():
    assert fill_budget(100, 100, 50, 0.3) == (35, 15)
    assert fill_budget(10, 100, 50, 0.3) == (10, 40)  # short prefix: suffix takes the rest
    assert fill_budget(100, 3, 50, 0.3) == (47, 3)
    with pytest.raises(TooShort):
        fill_budget(10, 10, 50, 0.3)


def test_canvas_overflow_refused(ids):
    with pytest.raises(TooShort):
        build_canvas(ids, list(range(10, 30)), [5, 6, 7], 22)
    canvas, pinned = build_canvas(ids, [10, 11], [], 4)
    assert canvas == [10, 11, ids.eos, ids.pad] and pinned == [False] * 4


def test_unbounded_prompt_matches_inference_format(small_tok, ids):
    p = build_prompt(ids, "C", [50], [60, 61], [70])
    assert p == [ids.bos, ids.file, 50, ids.fim_suffix, 70, ids.fim_prefix, 60, 61, ids.fim_middle]
    p = build_prompt(ids, "B", [50], [60, 61], [70])
    assert p == [ids.bos, ids.file, 50, ids.fim_prefix, 60, 61, ids.fim_middle]


@pytest.mark.parametrize("kind", ["line", "multiline", "partial", "empty"])
def test_span_kinds(kind):
    rng = random.Random(3)
    for _ in range(30):
        s = sample_span(TEXT, rng, kind)
        assert s is not None
        mid = TEXT[s.start : s.end]
        if kind == "line":
            assert "\n" not in mid and mid and TEXT[s.end : s.end + 1] in ("\n", "")
        elif kind == "multiline":
            assert 1 <= mid.count("\n") <= 5 and mid.strip()
        elif kind == "partial":
            assert "\n" not in mid and mid and TEXT[s.end] != "\n"
        else:
            assert mid == ""


def test_sampler_batches_are_rectangular_and_deterministic(small_tok, small_texts):
    a = ExampleSampler(small_tok, small_texts, seed=5).batch(6, 64, 32)
    b = ExampleSampler(small_tok, small_texts, seed=5).batch(6, 64, 32)
    assert a.prompt.shape == (6, 64) and a.canvas.shape == (6, 32)
    assert (a.prompt == b.prompt).all() and (a.canvas == b.canvas).all()
    assert (a.weight[a.pinned] == 0).all()
    assert (a.weight > 0).any()


def test_ar_sequence_targets_skip_pads(small_tok, ids):
    span = Span("line", TEXT.index("sorted("), TEXT.index(":\n        path"))
    ex = make_example(small_tok, ids, "w.py", TEXT, span, "A", 40, 24, 0)
    batch = collate([ex], ids, 0.2)
    inp, tgt = ar_sequence(batch, ids)
    assert inp.shape == tgt.shape == (1, 40 + 24 - 1)
    t = tgt[0].tolist()
    assert ids.eos in t and ids.pad not in t
