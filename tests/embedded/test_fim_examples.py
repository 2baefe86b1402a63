import itertools
import random

import pytest
from dcopilot.engine.tasks.layout import fim_specials
from dcopilot.engine.tasks.requests import Snippet
from dcopilot.engine.training.fim_data import (
    ExampleSampler,
    MixConfig,
    Span,
    TooShort,
    ar_sequence,
    collate,
    language_factors,
    line_window,
    make_example,
    plain,
    rank_snippets,
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


@pytest.fixture(scope="module")
def tok(small_tok):
    return plain(small_tok)


def _decode(tok, ids_):
    return tok.decode(ids_, skip_special_tokens=False)


@pytest.mark.parametrize("layout", ["A", "B", "C"])
def test_example_layout_invariants(small_tok, tok, ids, layout):
    span = Span("line", TEXT.index("sorted("), TEXT.index(":\n        path"))
    P, L, K = 24, 24, 5
    ex = make_example(tok, ids, "pkg/walk.py", TEXT, span, layout, P, L, K, suffix_share=0.4)
    middle = tok.encode(TEXT[span.start : span.end])
    suffix = tok.encode(TEXT[span.end :])
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


def test_prompt_too_short_is_refused(tok, ids):
    span = Span("line", 0, 9)
    with pytest.raises(TooShort):
        make_example(tok, ids, "a.py", TEXT, span, "B", 200, 24, 4)  # no prefix at all before offset 0


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


def test_ar_sequence_targets_skip_pads(tok, ids):
    span = Span("line", TEXT.index("sorted("), TEXT.index(":\n        path"))
    ex = make_example(tok, ids, "w.py", TEXT, span, "A", 40, 24, 0)
    batch = collate([ex], ids, 0.2)
    inp, tgt = ar_sequence(batch, ids)
    assert inp.shape == tgt.shape == (1, 40 + 24 - 1)
    t = tgt[0].tolist()
    assert ids.eos in t and ids.pad not in t


@pytest.mark.parametrize(
    "at,lines,window",
    [
        (0, 2, "import os\n\n"),
        (1, 1, "\n"),  # the next line start at or after the offset
        (10, 1, "\n"),  # an offset on a line start keeps that line
        (TEXT.index("def"), 2, "def walk(root):\n    for name in sorted(os.listdir(root)):\n"),
        (TEXT.index("            yield path"), 5, "            yield path\n"),  # the end stops it
        (len(TEXT), 3, ""),
        (len(TEXT) - 3, 3, ""),  # no line starts after it
    ],
)
def test_line_window_table(at, lines, window):
    a, b = line_window(TEXT, at, lines)
    assert TEXT[a:b] == window


def test_rank_snippets_prefers_shared_identifiers_and_keeps_order_on_ties():
    near = "for name in names:\n    total = compute(name)\n"
    a, b, c = Snippet("a.py", "x = 1\n"), Snippet("b.py", "def compute(name):\n"), Snippet("c.py", "total = 0\n")
    assert rank_snippets(near, [a, b, c], 2) == (b, c)
    assert rank_snippets(near, [a, c], 3) == (c, a)
    assert rank_snippets("nothing shared", [a, c], 2) == (a, c)


def test_sampled_snippets_come_from_the_directory_or_far_in_the_same_file(small_tok, small_texts):
    mix = MixConfig(snippet_p=1.0)
    sampler = ExampleSampler(small_tok, small_texts, seed=3, mix=mix)
    rng = random.Random(0)
    seen_same = seen_other = 0
    for _ in range(60):
        path = rng.choice(sampler.paths)
        text = small_texts[path]
        span = sample_span(text, rng, "line")
        if span is None:
            continue
        got = sampler.snippets(path, span, reach=500)
        assert 1 <= len(got) <= 3 or not got
        for s in got:
            assert s.path.rpartition("/")[0] == path.rpartition("/")[0] and s.text.strip()
            if s.path == path:
                seen_same += 1
                at = text.index(s.text)  # a window of the file, away from the span
                assert at + len(s.text) <= span.start - 500 or at >= span.end + 500
            else:
                seen_other += 1
                assert s.text in small_texts[s.path]
    assert seen_same and seen_other
    assert ExampleSampler(small_tok, small_texts, mix=MixConfig(snippet_p=0.0)).snippets(path, span, 500) == ()


def test_batches_carry_snippets_in_some_prompts(small_tok, small_texts, ids):
    batch = ExampleSampler(small_tok, small_texts, seed=2).batch(16, 128, 32)
    files = (batch.prompt == ids.file).sum(dim=1).tolist()
    assert min(files) == 1 and max(files) >= 2  # the current file's header, plus snippet blocks in some


@pytest.mark.parametrize(
    ("alpha", "shares"),
    [
        (1.0, {"python": 0.9, "lua": 0.1}),  # the corpus's own mix: by bytes
        (0.5, {"python": 0.75, "lua": 0.25}),  # 900 ** 0.5 : 100 ** 0.5 = 30 : 10
        (0.0, {"python": 0.5, "lua": 0.5}),  # every language alike
    ],
)
def test_language_alpha_sets_each_languages_share(small_tok, alpha, shares):
    texts = {f"p{i}.py": "x = 1\n" * 30 for i in range(5)}  # 5 x 180 bytes
    texts |= {"a.lua": "y = 2\n" * 10, "b.lua": "-- " + "b" * 36 + "\n"}  # 60 + 40 bytes
    languages = {p: "python" if p.endswith(".py") else "lua" for p in texts}
    sampler = ExampleSampler(small_tok, texts, mix=MixConfig(language_alpha=alpha), languages=languages)
    assert sampler.language_bytes() == {"python": 900, "lua": 100}
    assert sampler.language_shares() == pytest.approx(shares)
    # within a language, files keep their size's share (a.lua has 60 of lua's 100 bytes)
    steps = [b - a for a, b in itertools.pairwise([0, *sampler.cum_weights])]
    weights = dict(zip(sampler.paths, steps, strict=True))
    assert weights["a.lua"] / (weights["a.lua"] + weights["b.lua"]) == pytest.approx(0.6)
    # the sampler's draws follow the shares
    drawn = [sampler.draw_path() for _ in range(4000)]
    lua = sum(p.endswith(".lua") for p in drawn) / len(drawn)
    assert lua == pytest.approx(shares["lua"], abs=0.04)


def test_language_alpha_one_keeps_the_old_integer_weights_and_out_of_range_is_refused(small_tok, small_texts):
    """At alpha 1 the cumulative weights are the files' integer sizes, so a run started before the setting existed
    resumes onto the same draws."""
    languages = {p: "python" for p in small_texts}
    sampler = ExampleSampler(small_tok, small_texts, seed=5, languages=languages)
    sizes = [len(small_texts[p]) for p in sorted(small_texts)]
    assert sampler.cum_weights == list(itertools.accumulate(sizes)) and all(isinstance(w, int) for w in sizes)
    assert language_factors({"python": 400, "go": 100, "none": 0}, 0.5) == {"python": 0.05, "go": 0.1}
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="language_alpha"):
            MixConfig(language_alpha=bad)
