"""complete() / rewrite() on a tiny random checkpoint: invariants only (the model's words are random)."""

import pytest
import torch
from dcopilot.engine.tasks import layout as lay
from dcopilot.engine.tasks.edit import EditRequest, EditTooLong, rewrite
from dcopilot.engine.tasks.infill import SINGLE_LINE_TOKENS, Candidate, InfillRequest, complete, run_infill, select
from dcopilot.engine.tasks.textdiff import apply_edits

DOC = "def add(a, b):\n    return a + b\n\n\nx = add(1, )\nprint(x)\n"
CURSOR = DOC.index(", )") + 2


@pytest.mark.parametrize("layout", ["A", "B", "C"])
def test_candidates_are_post_processed_and_ranged(tiny_model, layout):
    res = run_infill(tiny_model, InfillRequest(text=DOC, cursor=CURSOR, path="m.py", layout=layout, hypotheses=3))
    assert res.layout == layout and res.prompt_format == "fim"
    assert len(res.canvases) == 3 and res.steps >= 1
    line_end = DOC.index("\n", CURSOR)
    for c in res.candidates:
        assert c.start == CURSOR and CURSOR <= c.end <= line_end
        assert c.text.strip() and c.text == c.text.rstrip()
    scores = [c.score for c in res.candidates]
    assert scores == sorted(scores, reverse=True)
    assert sum(c.votes for c in res.candidates) + sum(res.rejected.values()) <= 3


@pytest.mark.parametrize("layout", ["B", "C"])
def test_pinned_suffix_tail_is_held(tiny_model, layout):
    res = run_infill(
        tiny_model,
        InfillRequest(text=DOC, cursor=CURSOR, path="m.py", layout=layout, pinned_suffix_tokens=3, hypotheses=2),
    )
    assert res.tail == tiny_model.tokenizer.encode(DOC[CURSOR:])[:3]
    for row in res.canvases:
        assert row[-3:] == res.tail


def test_length_hypotheses_pin_eos(tiny_model):
    res = run_infill(tiny_model, InfillRequest(text=DOC, cursor=CURSOR, layout="A", hypotheses=3, multiline="never"))
    eos = tiny_model.generation.eos_token_ids[0]
    assert res.canvases[1][8] == eos and res.canvases[2][4] == eos  # the single-line ladder: 8, then 4


def test_single_line_mode_never_breaks_lines(tiny_model):
    for seed in range(3):
        for c in complete(tiny_model, InfillRequest(text=DOC, cursor=CURSOR, multiline="never", seed=seed)):
            assert "\n" not in c.text


@pytest.mark.parametrize("text,cursor", [("", 0), ("x", 0), ("x", 1), ("a\r\nb\r\n", 3), ("é🙂\n\tz", 2)])
def test_edge_documents_do_not_fail(tiny_model, text, cursor):
    for c in complete(tiny_model, InfillRequest(text=text, cursor=cursor, max_tokens=8)):
        assert 0 <= c.start <= c.end <= len(text)


def test_bad_cursor_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="outside the document"):
        complete(tiny_model, InfillRequest(text="abc", cursor=9))


def test_same_seed_same_answer(tiny_model):
    req = InfillRequest(text=DOC, cursor=CURSOR, seed=5)
    assert complete(tiny_model, req) == complete(tiny_model, req)


def cand(text, score, end=0, votes=1):
    return Candidate(text, 0, end, score, score, 0.0, None, votes)


@pytest.mark.parametrize(
    "cands,limit,expected",
    [
        ([cand("a", -1.0), cand("b", -0.5)], 3, [("b", 1), ("a", 1)]),
        ([cand("a", -1.0), cand("b", -0.5), cand("a", -0.2)], 3, [("a", 2), ("b", 1)]),
        ([cand("a", -1.0), cand("a", -1.5, end=1)], 3, [("a", 1), ("a", 1)]),  # different ranges stay apart
        ([cand("a", -1.0), cand("b", -1.0), cand("b", -3.0)], 1, [("b", 2)]),  # equal score: more votes wins
        ([], 3, []),
    ],
)
def test_select(cands, limit, expected):
    assert [(c.text, c.votes) for c in select(cands, limit)] == expected


# ------------------------------------------------------------------------------------------------- edits

EDIT_DOC = "import os\n\ndef f(x):\n    y = x + 1\n    return y\n\nprint(f(2))\n"


@pytest.mark.parametrize("layout", ["A", "B", "C"])
@pytest.mark.parametrize("renoise", [0.0, 0.5, 1.0])
def test_edits_stay_inside_the_range_and_round_trip(tiny_model, layout, renoise):
    start, end = EDIT_DOC.index("def"), EDIT_DOC.index("\nprint")
    res = rewrite(
        tiny_model,
        EditRequest(
            text=EDIT_DOC,
            start=start,
            end=end,
            instruction="add type hints",
            path="m.py",
            layout=layout,
            renoise=renoise,
        ),
    )
    assert res.original == EDIT_DOC[start:end]
    for e in res.edits:
        assert start <= e.start <= e.end <= end
    new_doc = apply_edits(EDIT_DOC, res.edits)
    assert new_doc == EDIT_DOC[:start] + res.rewritten + EDIT_DOC[end:]
    assert res.rewritten.endswith("\n")  # the range's final line break is kept


def test_long_range_uses_several_canvases(tiny_model):
    body = "".join(f"    v{i} = {i} + {i}\n" for i in range(12))
    doc = "def g():\n" + body + "    return 0\n"
    start = doc.index("    v0")
    res = rewrite(tiny_model, EditRequest(text=doc, start=start, end=start + len(body)))
    assert res.canvases > 1
    assert apply_edits(doc, res.edits) == doc[:start] + res.rewritten + doc[start + len(body) :]


def test_too_long_range_is_refused(tiny_model):
    body = "".join(f"    v{i} = {i} + {i}\n" for i in range(200))
    with pytest.raises(EditTooLong, match="limit is 2"):
        rewrite(tiny_model, EditRequest(text=body, start=0, end=len(body), max_canvases=2))
    long_line = "x = [" + ", ".join(str(i) for i in range(300)) + "]\n"
    with pytest.raises(EditTooLong, match="does not fit"):
        rewrite(tiny_model, EditRequest(text=long_line, start=0, end=len(long_line)))


@pytest.mark.parametrize("start,end", [(3, 3), (5, 2), (0, 999)])
def test_bad_edit_ranges_are_clear_errors(tiny_model, start, end):
    with pytest.raises(ValueError, match="range"):
        rewrite(tiny_model, EditRequest(text=EDIT_DOC, start=start, end=end))


def test_crlf_documents_keep_crlf(tiny_model):
    doc = EDIT_DOC.replace("\n", "\r\n")
    start, end = doc.index("def"), doc.index("\r\nprint") + 2
    res = rewrite(tiny_model, EditRequest(text=doc, start=start, end=end, renoise=0.3))
    assert "\n" not in res.rewritten.replace("\r\n", "")


def test_chat_format_runs_end_to_end(tiny_model):
    res = run_infill(tiny_model, InfillRequest(text=DOC, cursor=CURSOR, prompt_format="gemma-chat", layout="A"))
    assert res.prompt_format == "gemma-chat"
    start, end = EDIT_DOC.index("def"), EDIT_DOC.index("\nprint")
    out = rewrite(
        tiny_model,
        EditRequest(text=EDIT_DOC, start=start, end=end, prompt_format="gemma-chat", instruction="fix the bug"),
    )
    assert apply_edits(EDIT_DOC, out.edits) == EDIT_DOC[:start] + out.rewritten + EDIT_DOC[end:]


def test_cancel_reaches_the_step_loop(tiny_model):
    from dcopilot.engine.runtime.sampler import Cancelled

    with pytest.raises(Cancelled):
        complete(tiny_model, InfillRequest(text=DOC, cursor=CURSOR), cancel=lambda: True)


def test_a_keystroke_reencodes_only_the_prompt_tail(tiny_model):
    """SPM order (A and C): typing changes only the end of the prompt, so the prefix cache serves the rest."""
    from dcopilot.engine.runtime.prefix_cache import PrefixCache

    body = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(12))
    doc = body + "y = f3(\n" + body
    cursor = len(body) + len("y = f3(")
    for layout in ("A", "C"):
        cache = PrefixCache(tiny_model)
        first = run_infill(
            tiny_model, InfillRequest(text=doc, cursor=cursor, layout=layout, hypotheses=1), encoder=cache.encode
        )
        typed = doc[:cursor] + "2" + doc[cursor:]
        run_infill(
            tiny_model, InfillRequest(text=typed, cursor=cursor + 1, layout=layout, hypotheses=1), encoder=cache.encode
        )
        assert cache.stats.hits == 1
        assert cache.stats.last_encoded <= 6 < first.prompt_tokens // 4


def test_prefix_cache_gives_the_same_answer(tiny_model):
    from dcopilot.engine.runtime.prefix_cache import PrefixCache

    req = InfillRequest(text=DOC, cursor=CURSOR, seed=3)
    cache = PrefixCache(tiny_model)
    run_infill(
        tiny_model, InfillRequest(text=DOC[:CURSOR] + "z" + DOC[CURSOR:], cursor=CURSOR + 1), encoder=cache.encode
    )
    cached, plain = complete(tiny_model, req, encoder=cache.encode), complete(tiny_model, req)
    assert [(c.text, c.start, c.end) for c in cached] == [(c.text, c.start, c.end) for c in plain]
    assert [c.score for c in cached] == pytest.approx([c.score for c in plain], abs=1e-4)  # chunked encode rounding


def test_every_layout_is_scored_against_the_suffix(tiny_model):
    for layout in ("A", "B", "C"):
        res = run_infill(
            tiny_model, InfillRequest(text=DOC, cursor=CURSOR, layout=layout, hypotheses=3, max_candidates=3)
        )
        assert res.candidates and all(c.suffix_agreement < 0.0 for c in res.candidates)
        assert all(
            c.evidence is not None
            and (c.evidence.confidence, c.evidence.agreement) == (c.confidence, c.suffix_agreement)
            for c in res.candidates
        )
    at_end = run_infill(tiny_model, InfillRequest(text=DOC, cursor=len(DOC), layout="A"))
    assert all(c.suffix_agreement == 0.0 for c in at_end.candidates)  # nothing follows the cursor


@pytest.mark.parametrize(
    "requested,fmt,expected",
    [("B", "gemma-chat", "B"), (None, "fim", "C"), ("auto", "fim", "C"), (None, "gemma-chat", "C")],
)
def test_resolve_layout(tiny_model, requested, fmt, expected):
    from dcopilot.engine.tasks.layout import Layout, PromptFormat
    from dcopilot.engine.tasks.prompting import prompting

    # the tiny checkpoint's config.json names layout_default C, which wins over the per-format fallback
    assert prompting(tiny_model).layout(requested, PromptFormat(fmt)) is Layout(expected)


def test_chat_models_without_a_layout_default_get_a():
    from dcopilot.engine.tasks.layout import Layout, PromptFormat
    from dcopilot.engine.tasks.prompting import ModelPrompting

    bare = ModelPrompting(specials=None)  # a checkpoint whose config.json has no "dcopilot" section

    assert bare.layout(None, PromptFormat.GEMMA_CHAT) is Layout.A
    assert bare.layout("auto", PromptFormat.FIM) is Layout.C


@pytest.mark.parametrize(
    "seed, noise_id, want",
    [
        ([lay.NOISE, lay.NOISE, 9], 4, [4, 4, 9]),  # absorbing noise: the noise token, pinned ids untouched
        ([7, 8, 9], 4, [7, 8, 9]),  # nothing to fill
        ([lay.NOISE, 9], None, None),  # uniform noise: some id in the vocabulary, then the pinned id
    ],
)
def test_noise_fill_uses_the_models_noise(seed, noise_id, want):
    from dcopilot.engine.tasks.infill import noise_fill

    got = noise_fill(seed, 50, torch.Generator().manual_seed(0), noise_id).tolist()
    if want is not None:
        assert got == want
    else:
        assert 0 <= got[0] < 50 and got[1:] == [9]


@pytest.mark.parametrize("multiline, free", [("never", SINGLE_LINE_TOKENS + 1), ("always", 80)])
def test_one_line_gets_a_short_canvas_several_lines_the_whole_budget(tiny_model, multiline, free, monkeypatch):
    monkeypatch.setattr(tiny_model, "canvas_length", 96)
    res = run_infill(
        tiny_model,
        InfillRequest(
            text=DOC,
            cursor=CURSOR,
            layout="C",
            pinned_suffix_tokens=4,
            max_tokens=79,
            hypotheses=1,
            multiline=multiline,
        ),
    )
    assert [len(row) for row in res.canvases] == [free + 4]


def _recording_encoder(model, seen):
    def encode(ids):
        seen.append(ids[0].tolist())
        return model.encode(ids)

    return encode


def test_request_snippets_reach_the_prompt_before_the_file(tiny_model):
    from dcopilot.engine.tasks.requests import Snippet

    tok, snippets = tiny_model.tokenizer, (Snippet("util.py", "def helper(x):\n    return x\n"), Snippet("", "y = 2\n"))
    sp = lay.specials_from(tok)
    seen: list[list[int]] = []
    req = InfillRequest(text=DOC, cursor=CURSOR, path="m.py", layout="C", hypotheses=1, snippets=snippets)
    run_infill(tiny_model, req, encoder=_recording_encoder(tiny_model, seen))
    # the tiny model was trained on 160-token prompts: a 128-token context budget, a quarter of it for snippets
    placed, _ = lay.fit_snippets(tok, snippets, 32)
    assert [s.path for s in placed] == ["util.py", ""] and placed[0] == snippets[0]
    blocks = [x for s in reversed(placed) for x in (sp.file, *tok.encode(f"{s.path}\n"), *tok.encode(s.text))]
    assert seen[0][: 1 + len(blocks)] == [sp.bos, *blocks]
    head = [sp.file, *tok.encode("m.py\n")]
    assert seen[0][1 + len(blocks) : 1 + len(blocks) + len(head)] == head
    seen.clear()
    rewrite(
        tiny_model,
        EditRequest(text=DOC, start=0, end=DOC.index("\n") + 1, path="m.py", snippets=snippets[:1]),
        encoder=_recording_encoder(tiny_model, seen),
    )
    assert seen[0][:2] == [sp.bos, sp.file] and seen[0].count(sp.file) == 2
