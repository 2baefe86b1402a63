"""Training examples are what inference builds for the same cursor: one prompt rule (engine/tasks/layout.py).

For random files, spans, paths, cross-file snippets, layouts, K and budgets, the example the training sampler's
make_example builds and the prompt and canvas that infill's cursor_prompt builds are compared id for id, with
the real BPE tokenizer trained on corpus files.
"""

import random

from dcopilot.engine.tasks import layout as lay
from dcopilot.engine.tasks.requests import Snippet
from dcopilot.engine.training.fim_data import SPAN_KINDS, make_example, plain, sample_span

CASES = 300


def _snippets(rng: random.Random, texts: dict[str, str], paths: list[str]) -> tuple[Snippet, ...]:
    out = []
    for _ in range(rng.randint(0, 3)):
        body = texts[rng.choice(paths)]
        a = rng.randrange(len(body))
        path = rng.choice(["", "pkg/mod.py", "/home/someone/projects/" * 3 + "deep/module.py"])  # one over 24 tokens
        out.append(Snippet(path, body[a : a + rng.randint(1, 600)]))
    return tuple(out)


def _document(rng: random.Random, text: str) -> str:
    lines = text.splitlines(keepends=True)
    a = rng.randrange(len(lines))
    return "".join(lines[a : a + rng.randint(3, 30)])


def test_training_examples_equal_what_inference_builds(small_tok, small_texts):
    tok, ids = plain(small_tok), lay.fim_specials(small_tok)
    rng = random.Random(11)
    paths = sorted(small_texts)
    compared = with_snippets = cut = 0
    for _ in range(CASES):
        path = rng.choice(paths)
        text = _document(rng, small_texts[path])
        span = sample_span(text, rng, rng.choice(SPAN_KINDS))
        if span is None:
            continue
        layout, k, budget = rng.choice(list(lay.Layout)), rng.randint(0, 12), rng.randint(24, 400)
        snippets = _snippets(rng, small_texts, paths)
        # Inference sees the document without the middle, the cursor where the middle starts.
        document = text[: span.start] + text[span.end :]
        parts = lay.PromptParts(path=path, prefix="", suffix="", snippets=snippets)
        built = lay.cursor_prompt(tok, ids, lay.PromptFormat.FIM, layout, document, span.start, budget, k, parts)
        middle = tok.encode(text[span.start : span.end])
        canvas_len = len(middle) + 1 + len(built.tail) + rng.randint(0, 6)
        ex = make_example(
            tok, ids, path, text, span, layout.value, len(built.ids), canvas_len, k, rng.random(), snippets, budget
        )
        whole = built.window.start == 0 and (built.window.end == len(document) or not layout.suffix_in_prompt)
        if not whole:
            # Inference cut whole lines where training cuts tokens (a fixed prompt length): the snippets, the
            # header and the pinned suffix tail still agree.
            cut += 1
            file_at = len(built.ids) - built.ids[::-1].index(ids.file)
            assert ex.prompt[:file_at] == built.ids[:file_at]
            assert ex.canvas[canvas_len - len(built.tail) :] == built.tail and sum(ex.pinned) == len(built.tail)
            continue
        compared += 1
        with_snippets += bool(built.snippets)
        assert ex.prompt == built.ids
        # The training canvas is the inference canvas whose length hypothesis is the true middle, its free
        # slots holding that middle.
        spec = lay.assemble_canvas(canvas_len, built.tail, len(middle) or None, ids.eos, ids.pad)
        filled = [*middle, *spec.seed[len(middle) :]]
        if not middle:
            filled = lay.scoring_canvas([], spec.free_len, built.tail, ids.eos, ids.pad)
        assert ex.canvas == filled and ex.pinned == [False] * spec.free_len + [True] * len(built.tail)
        assert ex.n_middle == len(middle)
    assert compared >= 100 and with_snippets >= 50 and cut >= 20, (compared, with_snippets, cut)
