"""Retrieved candidates in the engine (tiny random checkpoint, real sampler): they are scored in the model's
scoring pass and ranked with its hypotheses on one calibrated score; snippets feed them; a seeded canvas runs."""

import dataclasses

import pytest
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.tasks import score_fit
from dcopilot.engine.tasks.calibrate import FEATURES, ScoreFit, symbols_only
from dcopilot.engine.tasks.infill import retrieved_ids, run_infill, step_shapes
from dcopilot.engine.tasks.requests import InfillRequest, Snippet

DOC = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\nprint(ar"
H = 3  # hypotheses and budget pinned: the shipped AUTO depends on the device (test_device_defaults.py)
FIXED = {"hypotheses": H, "max_tokens": 64}


def test_retrieved_candidates_are_scored_and_ranked_with_the_models(tiny_model):
    res = run_infill(
        tiny_model, InfillRequest(text=DOC, cursor=len(DOC), multiline="never", max_candidates=16, **FIXED)
    )
    by_origin = {c.origin for c in res.candidates}
    assert res.retrieved >= 1 and {"model", "retrieved"} <= by_origin
    retrieved = next(c for c in res.candidates if c.origin == "retrieved")
    assert retrieved.text == "ea(2, 3))"[: len(retrieved.text)] and retrieved.text.startswith("ea(")
    # one scale for all: each score is the calibrated function of the evidence from the same scoring pass
    for c in res.candidates:
        assert c.evidence is not None and c.evidence.confidence < 0.0
        assert c.score == pytest.approx(score_fit.of_model(tiny_model).fit.score(c.evidence))
        assert c.evidence.retrieved is (c.origin == "retrieved")
    assert retrieved.evidence.typed == len("print(ar") and retrieved.evidence.attested
    scores = [c.score for c in res.candidates]
    assert scores == sorted(scores, reverse=True)


def test_a_candidate_of_symbols_alone_says_so_in_its_evidence(tiny_model):
    doc = "x = f(g(1))\nx = f(g(1"  # the line above continues the cursor's line with "))"
    res = run_infill(
        tiny_model, InfillRequest(text=doc, cursor=len(doc), multiline="never", max_candidates=16, **FIXED)
    )
    closing = next(c for c in res.candidates if c.origin == "retrieved" and c.text == "))")
    assert closing.evidence.symbols_only
    for c in res.candidates:
        assert c.evidence.symbols_only is symbols_only(c.text)


def test_without_retrieval_only_the_model_answers(tiny_model):
    req = InfillRequest(text=DOC, cursor=len(DOC), multiline="never", max_candidates=16, **FIXED, retrieve=False)
    res = run_infill(tiny_model, req)
    assert res.retrieved == 0 and {c.origin for c in res.candidates} <= {"model"}


def test_snippets_feed_retrieval_with_text_only_they_hold(tiny_model):
    doc = "total = 0\ntotal = comp"
    snippet = Snippet("lib/widgets.py", "total = compute_widget_total(parts)\n")
    plain = run_infill(
        tiny_model, InfillRequest(text=doc, cursor=len(doc), multiline="never", max_candidates=16, **FIXED)
    )
    fed = run_infill(
        tiny_model,
        InfillRequest(text=doc, cursor=len(doc), multiline="never", max_candidates=16, **FIXED, snippets=(snippet,)),
    )
    assert not any("compute_widget_total" in c.text for c in plain.candidates)
    assert any(c.origin == "retrieved" and c.text == "ute_widget_total(parts)" for c in fed.candidates)


def test_a_seeded_canvas_is_one_more_row_of_the_step_loop(tiny_model):
    req = InfillRequest(text=DOC, cursor=len(DOC), multiline="never", max_candidates=16, **FIXED, seed_canvas=True)
    res = run_infill(tiny_model, req)
    assert res.model_rows == req.hypotheses + 1 and len(res.canvases) == req.hypotheses + 1
    plain = run_infill(
        tiny_model, InfillRequest(text=DOC, cursor=len(DOC), multiline="never", max_candidates=16, **FIXED)
    )
    assert plain.model_rows == req.hypotheses


def test_step_shapes_count_seeded_and_retrieved_rows(tiny_model):
    def batches(**kw):
        shapes, _ = step_shapes(tiny_model, InfillRequest(text="", cursor=0, multiline="never", **FIXED, **kw))
        return sorted((s.batch, s.sampled) for s in shapes)

    h = H
    assert batches(retrieve=False) == [(h, True), (2 * h, False)]  # scoring: every row twice
    assert batches(retrieved=4) == [(h, True), (2 * (h + 4), False)]
    assert batches(retrieved=4, seed_canvas=True) == [(h + 1, True), (2 * (h + 1 + 4), False)]


BRIDGED = "if ready:\n    go(1)\n    go(2)\nrun()\nif ready:\n    "  # the cursor's gap held these two lines before


def test_a_retrieved_block_longer_than_the_models_canvas_is_scored_whole(tiny_model):
    # 4 tokens for the model's own answers (a CPU's short canvas); the 12-token bridge is still scored, in a
    # scoring canvas as long as the model's trained one.
    req = InfillRequest(
        text=BRIDGED + "\nrun()\n",
        cursor=len(BRIDGED),
        multiline="always",
        max_candidates=16,
        hypotheses=1,
        max_tokens=4,
    )
    res = run_infill(tiny_model, req)
    bridge = next(c for c in res.candidates if c.origin == "retrieved" and "\n" in c.text)
    assert bridge.text == "go(1)\n    go(2)"
    assert bridge.evidence.tokens == len(tiny_model.tokenizer.encode(bridge.text)) > 4
    assert (bridge.evidence.context, bridge.evidence.after) == (1, 1)
    assert all(c.evidence.after == 0 for c in res.candidates if c is not bridge)
    # A compiled step (a denoise drop-in) keeps the shapes it warmed up: texts longer than its canvas are cut to
    # the whole lines that fit (here one, which the line match offers already).
    compiled = run_infill(tiny_model, req, denoise=tiny_model.denoise)
    assert not any("\n" in c.text for c in compiled.candidates if c.origin == "retrieved")
    assert compiled.retrieved < res.retrieved


def test_a_retrieved_block_longer_than_the_canvas_is_cut_to_its_whole_lines_that_fit(tiny_model):
    tok = tiny_model.tokenizer
    doc = "if ready:\n    go(1)\n    go(2)\n    go(3)\nrun()\nif ready:\n    "
    req = InfillRequest(text=doc + "\nrun()\n", cursor=len(doc), multiline="always")
    whole = retrieved_ids(tok, req, True, 1000)
    assert [m.text for _, m in whole] == ["go(1)\n    go(2)\n    go(3)", "go(1)"]
    two = "go(1)\n    go(2)"
    cut = retrieved_ids(tok, req, True, len(tok.encode(two)) + 1)  # room for two lines and the end token
    assert [(ids, m.text) for ids, m in cut] == [(tok.encode(two), two), (tok.encode("go(1)"), "go(1)")]
    # the lines after the cut text are not the ones after the cursor: no repeated line after it any more
    assert (cut[0][1].context, cut[0][1].after, whole[0][1].after) == (1, 0, 1)
    # cut to a text another match offers: once (the first, best-ranked one)
    one = retrieved_ids(tok, req, True, len(tok.encode("go(1)")) + 1)
    assert [m.text for _, m in one] == ["go(1)"] and one[0][1].after == 0
    assert retrieved_ids(tok, req, True, 2) == []  # not even a line fits


def test_the_model_writes_only_what_could_pass_the_gate(tiny_model):
    # The shipped score gives the model's own answers a ceiling: a gate above it rules every one of them out, so
    # none is written (no step loop) and only the retrieved texts are scored, exactly as they are otherwise.
    top = score_fit.of_model(tiny_model).fit.ceiling()
    req = InfillRequest(text=DOC, cursor=len(DOC), multiline="never", max_candidates=16, **FIXED)
    every = run_infill(tiny_model, req)
    above = run_infill(tiny_model, dataclasses.replace(req, min_score=top + 0.01))
    assert every.model_rows == H and every.steps > 0 and every.unwritten is None
    assert above.model_rows == 0 and above.steps == 0 and above.unwritten == top and above.canvases == []
    assert {c.origin for c in above.candidates} == {"retrieved"}
    retrieved = {c.text: c.score for c in every.candidates if c.origin == "retrieved"}
    assert {c.text: c.score for c in above.candidates} == pytest.approx(retrieved, rel=1e-4)
    # at or below the ceiling, or with no gate, the model writes
    for min_score in (top, top - 1.0, None):
        res = run_infill(tiny_model, dataclasses.replace(req, min_score=min_score))
        assert res.model_rows == H and res.unwritten is None
    # a compiled step keeps the shapes it warmed up: it writes anyway
    compiled = run_infill(tiny_model, dataclasses.replace(req, min_score=top + 0.01), denoise=tiny_model.denoise)
    assert compiled.model_rows == H and compiled.unwritten is None


def test_with_nothing_to_write_or_score_the_model_is_not_run(tiny_model):
    calls = []

    def encoder(ids):
        calls.append(ids)
        return tiny_model.encode(ids)

    doc = "import os\n\nprint(os.getcwd())\nx = "  # nothing in the document continues "x = "
    top = score_fit.of_model(tiny_model).fit.ceiling()
    req = InfillRequest(text=doc, cursor=len(doc), multiline="never", **FIXED, min_score=top + 0.01)
    res = run_infill(tiny_model, req, encoder=encoder)
    assert res.candidates == [] and res.retrieved == 0 and res.steps == 0 and calls == []
    assert res.unwritten == top and res.prompt_tokens > 0
    assert run_infill(tiny_model, dataclasses.replace(req, min_score=None), encoder=encoder).model_rows == H
    assert len(calls) == 1


def test_candidates_are_scored_with_the_fit_their_checkpoint_carries(tiny_model, tmp_path):
    import shutil

    own = tmp_path / "fitted"
    shutil.copytree(tiny_model.path, own)
    fit = ScoreFit(tuple(-0.5 if name == "log_tokens" else 0.25 for name in FEATURES), -1.0)
    score_fit.write(own, fit, "a test")
    model = load_model(str(own), device="cpu")
    req = InfillRequest(text=DOC, cursor=len(DOC), multiline="never", max_candidates=16, **FIXED)
    res = run_infill(model, req)
    assert res.candidates and score_fit.of_model(model).own and not score_fit.of_model(tiny_model).own
    for c in res.candidates:
        assert c.evidence is not None and c.score == pytest.approx(fit.score(c.evidence))
    # its ceiling decides what the model writes
    above = run_infill(model, dataclasses.replace(req, min_score=fit.ceiling() + 0.01))
    assert above.model_rows == 0 and above.unwritten == fit.ceiling()
