"""Completions at a cursor: window -> prompt and canvases -> one batched denoise -> scored, post-processed text.

All length hypotheses of a request are rows of one batch in one step loop (the step is weight-bound on a GPU, so
extra rows cost little). Hypotheses are ranked by the model's own confidence in its answer and, where the suffix is
pinned in the canvas, by how well the answer agrees with that suffix: both read from one extra denoiser pass over
the committed canvases.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from dcopilot.engine.runtime.static import StepShape
from dcopilot.engine.tasks import calibrate, retrieve, score_fit, syntax
from dcopilot.engine.tasks import layout as lay
from dcopilot.engine.tasks import postprocess as pp
from dcopilot.engine.tasks.prompting import HEADER_RESERVE, prompting
from dcopilot.engine.tasks.requests import InfillRequest, for_device
from dcopilot.engine.tasks.window import Window, cursor_window, tail_text_budget

# One line rarely needs more tokens; a shorter canvas makes every step cheaper (on DiffusionGemma's 256-slot
# canvas, 7x fewer positions) and leaves fewer pad slots to settle.
SINGLE_LINE_TOKENS = 32


@dataclass(frozen=True)
class Candidate:
    text: str  # to insert
    start: int  # replaced range in the document (code points); start == cursor
    end: int  # > start when the text replaces auto-closed brackets or the rest of the line
    score: float  # log P(useful) under the checkpoint's score fit (dcopilot.engine.tasks.score_fit; higher is better)
    confidence: float  # mean log-probability of the middle and its end token
    suffix_agreement: float  # mean log-probability of the first suffix tokens after this middle (0.0: no suffix)
    hypothesis: int | None  # pinned middle length, None = free length
    votes: int = 1  # hypotheses that produced the same text
    origin: str = "model"  # model: denoised from noise; retrieved: found in context; seeded: denoised from one
    evidence: calibrate.Evidence | None = None  # what the score was calibrated from


@dataclass
class InfillResult:
    candidates: list[Candidate]
    steps: int  # denoiser calls in the step loop (plus one scoring pass, not counted here)
    seconds: float
    prompt_tokens: int
    layout: str
    prompt_format: str
    rejected: dict[str, int] = field(default_factory=dict)  # post-processing reject reasons -> count
    canvases: list[list[int]] = field(default_factory=list)  # committed canvases, one per hypothesis
    tail: list[int] = field(default_factory=list)  # the pinned suffix tokens at the canvas tail
    retrieved: int = 0  # candidates found in context and scored with the model's
    model_rows: int = 0  # canvases the step loop denoised (hypotheses, plus a seeded one)
    # when the gate ruled out the model's own answers, so that none was written: the most they could score
    unwritten: float | None = None


def select(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """Merge hypotheses that produced the same edit (keeping the best-scored, counting votes), best first.

    Score = confidence + suffix agreement; ties go to the text more hypotheses agreed on.
    """
    best: dict[tuple[str, int, int], Candidate] = {}
    for cand in candidates:
        key = (cand.text, cand.start, cand.end)
        prev = best.get(key)
        if prev is None:
            best[key] = cand
            continue
        keep = cand if cand.score > prev.score else prev
        best[key] = dataclasses.replace(keep, votes=prev.votes + cand.votes)
    return sorted(best.values(), key=lambda c: (-c.score, -c.votes))[:limit]


Encoder = Callable[[torch.Tensor], object]  # prompt ids [1, P] -> KV cache (e.g. the prefix cache's lookup)


def noise_fill(seed: list[int], vocab: int, generator: torch.Generator, noise_id: int | None = None) -> torch.Tensor:
    """Canvas tensor with NOISE slots replaced by the sampler's noise: uniform random ids, or `noise_id` for a
    model trained with absorbing-state noise (GenerationConfig.noise_token_id)."""
    t = torch.tensor(seed, dtype=torch.long)
    slots = t == lay.NOISE
    if noise_id is not None:
        t[slots] = noise_id
    else:
        t[slots] = torch.randint(0, vocab, (int(slots.sum()),), generator=generator)
    return t


def window_for(model, text: str, cursor: int, layout: lay.Layout, budget: int, k: int) -> Window:
    """The document window a prompt without snippets shows (layout.cursor_prompt builds the prompt itself)."""
    tok = model.tokenizer
    return cursor_window(text, cursor, layout.suffix_in_prompt, budget, k, lambda s: len(tok.encode(s)))


def canvas_plan(
    model, max_tokens: int, multiline: bool, tail_len: int, hypotheses: int
) -> tuple[int, list[int | None]]:
    """(canvas length, length hypotheses): the canvas holds the middle budget, its end token and the pinned tail."""
    budget = max_tokens if multiline else min(max_tokens, SINGLE_LINE_TOKENS)
    length = min(model.canvas_length, budget + 1 + tail_len)
    if length - tail_len < 2:
        raise ValueError(f"canvas of {length} slots leaves no room for a middle next to {tail_len} pinned tokens")
    return length, lay.length_hypotheses(hypotheses, length - tail_len, multiline)


def step_shapes(model, req: InfillRequest) -> tuple[list[StepShape], int]:
    """What completions built like `req` give the denoise step (its text and cursor are not read): the step loop's
    (batch, canvas length) when the suffix fills the pinned tail (in layouts B and C a file's last lines give shorter
    canvases, hence other shapes), the scoring pass's (always k tail slots), and the longest prompt in tokens
    (window budget plus header; a long file path may exceed it)."""
    req = for_device(req, next(model.parameters()).device.type)
    facts = prompting(model)
    chosen = facts.layout(req.layout, facts.format(req.prompt_format))
    k = max(0, facts.pinned(req.pinned_suffix_tokens))
    pinned = k if chosen.pins_suffix else 0
    modes = {"always": [True], "never": [False]}.get(req.multiline, [False, True])
    shapes = []
    seeded = 1 if req.retrieve and req.seed_canvas else 0
    scored = req.retrieved if req.retrieve else 0
    for mode in modes:
        length, hyps = canvas_plan(model, req.max_tokens, mode, pinned, req.hypotheses)
        rows = len(hyps) + seeded
        shapes.append(StepShape(rows, length))
        # the scoring pass: each row twice (score_rows), the retrieved rows too, always k tail slots
        shapes.append(StepShape(2 * (rows + scored), length - pinned + k, sampled=False))
    longest = facts.context_budget(req.context_tokens) + HEADER_RESERVE
    if not chosen.suffix_in_prompt:
        longest += tail_text_budget(k)
    return list(dict.fromkeys(shapes)), longest


def retrieved_ids(tok, req: InfillRequest, multiline: bool, free_len: int) -> list[tuple[list[int], retrieve.Match]]:
    """Token ids of the continuations found in the document and the request's snippets that fit `free_len` slots
    with room for their end token (dcopilot.engine.tasks.retrieve), with their matches."""
    found = retrieve.continuations(
        req.text[: req.cursor],
        req.text[req.cursor :],
        [s.text for s in req.snippets],
        multiline=multiline,
        limit=req.retrieved,
    )
    out, seen = [], set()
    for match in found:
        text, ids = match.text, tok.encode(match.text)
        while len(ids) >= free_len and "\n" in text:  # a block longer than the canvas: its whole lines that fit
            text = text[: text.rindex("\n")]
            ids = tok.encode(text)
        if 0 < len(ids) < free_len and text not in seen:
            seen.add(text)
            out.append((ids, match if text == match.text else dataclasses.replace(match, text=text, after=0)))
    return out


@torch.no_grad()
def score_rows(
    model, cache, canvas: torch.Tensor, ends: list[int], tail_len: int, denoise: Callable | None = None
) -> tuple[list[float], list[float]]:
    """(confidence, suffix agreement) per row from one denoiser pass over the committed canvases.

    Each row goes in twice, the even positions of its free region replaced by noise in one copy and the odd ones in
    the other, and each token is read from the copy that hid it: a clean canvas would let the denoiser copy every
    token back, rating the model's own answers near certainty and any text it did not write (a retrieved one) far
    below them. The pinned tail stays clean, as in training, and is read from both copies.
    Confidence: mean log-probability of positions 0..ends[b] (the middle and its end token). Agreement: mean
    log-probability of the last `tail_len` positions (the suffix tail given the middle), 0.0 when there is none.
    """
    B, L = canvas.shape
    pos = torch.arange(L)
    parity = (pos[None, :] % 2 == torch.tensor([[0], [1]])) & (pos < L - tail_len)
    hide = parity.repeat_interleave(B, dim=0).to(canvas.device)  # [2B, L]
    clean = canvas.repeat(2, 1)
    noise_id = model.generation.noise_token_id
    if noise_id is None:  # a uniform-noise model: random ids, the same for every call and every row (a row's
        # score then does not depend on which other rows share its batch)
        noise = torch.randint(0, model.config.vocab_size, (2, 1, L), generator=torch.Generator().manual_seed(0))
        noise = noise.expand(2, B, L).reshape(2 * B, L).to(canvas.device)
    else:
        noise = torch.full_like(clean, noise_id)
    logp = torch.log_softmax((denoise or model.denoise)(torch.where(hide, noise, clean), cache), dim=-1)
    read = logp.gather(-1, clean[..., None]).squeeze(-1).view(2, B, L).cpu()
    hidden = hide.view(2, B, L).cpu()
    tok_logp = torch.where(hidden.any(0), (read * hidden).sum(0), read.mean(0))  # [B, L]
    head = pos[None, :] <= torch.tensor(ends)[:, None]
    conf = (tok_logp * head).sum(-1) / head.sum(-1)
    if tail_len:
        agree = tok_logp[:, L - tail_len :].mean(-1)
    else:
        agree = torch.zeros(B)
    return conf.tolist(), agree.tolist()


def run_infill(
    model,
    req: InfillRequest,
    generator: torch.Generator | None = None,
    cancel: Callable[[], bool] | None = None,
    encoder: Encoder | None = None,
    denoise: Callable | None = None,
) -> InfillResult:
    """denoise: a drop-in for model.denoise in the step loop and the scoring pass
    (dcopilot.engine.runtime.static.StaticDenoise)."""
    from dcopilot.engine.runtime.sampler import sample

    started = time.perf_counter()
    req = for_device(req, next(model.parameters()).device.type)
    if not 0 <= req.cursor <= len(req.text):
        raise ValueError(f"cursor {req.cursor} outside the document (length {len(req.text)})")
    if req.max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    tok = model.tokenizer
    facts = prompting(model)
    specials = facts.required_specials()
    fmt = facts.format(req.prompt_format)
    layout = facts.layout(req.layout, fmt)
    k = facts.pinned(req.pinned_suffix_tokens)
    parts = lay.PromptParts(path=req.path, prefix="", suffix="", language=req.language, snippets=req.snippets)
    budget = facts.context_budget(req.context_tokens)
    built = lay.cursor_prompt(tok, specials, fmt, layout, req.text, req.cursor, budget, k, parts)
    window, prompt, tail = built.window, built.ids, built.tail

    multiline = pp.decide_multiline(req.multiline, window.line_prefix, window.line_suffix)
    length, hyps = canvas_plan(model, req.max_tokens, multiline, len(tail), req.hypotheses)
    # The model writes its own answers only if one could pass the caller's gate: the embedded model's never can
    # at the default gate (its fit's ceiling), and writing them is most of a request's time on a CPU. A compiled
    # step keeps the shapes it warmed up, so it writes them anyway.
    fit = score_fit.of_model(model).fit
    most = fit.ceiling()
    writes = denoise is not None or req.min_score is None or most >= req.min_score
    hyps = hyps if writes else []
    unwritten = None if writes else most
    specs = [lay.assemble_canvas(length, tail, h, specials.eos, specials.pad) for h in hyps]
    free_len = length - len(tail)
    # A retrieved text is scored whole, up to the longest canvas the model knows, though the model writes fewer
    # tokens itself (a CPU's short canvases): a bridged block is worth its scoring pass. A compiled step keeps
    # the shapes it warmed up.
    room = free_len if denoise is not None else max(free_len, model.canvas_length - max(k, 0))
    found = retrieved_ids(tok, req, multiline, room) if req.retrieve else []
    if not specs and not found:  # nothing to write and nothing to score: the model is not needed
        seconds = time.perf_counter() - started
        return InfillResult([], 0, seconds, len(prompt), layout.value, fmt.value, tail=tail, unwritten=unwritten)

    device = next(model.parameters()).device
    gen = generator or torch.Generator(device=device).manual_seed(req.seed)
    cpu_gen = torch.Generator().manual_seed(req.seed)
    vocab = model.config.vocab_size
    origins = ["model"] * len(specs)
    seeds = [ids for ids, _ in found if len(ids) < free_len]
    if req.seed_canvas and seeds and writes:
        # The best retrieved text that fits, partly re-noised, as one more canvas: the model edits it instead of
        # writing from noise (an edit's canvas, so its length stays free).
        noised = (torch.rand(free_len, generator=cpu_gen) < req.renoise).tolist()
        specs.append(lay.assemble_edit_canvas(length, seeds[0], tail, specials.eos, specials.pad, noised))
        hyps = [*hyps, None]
        origins.append("seeded")
    prompt_ids = torch.tensor([prompt], dtype=torch.long, device=device)
    cache = (encoder or model.encode)(prompt_ids)
    tokens, steps = torch.empty(0, length, dtype=torch.long), 0
    if specs:
        noise_id = model.generation.noise_token_id
        seed = torch.stack([noise_fill(s.seed, vocab, cpu_gen, noise_id) for s in specs]).to(device)
        pinned = torch.tensor([s.pinned for s in specs], dtype=torch.bool, device=device)
        result = sample(
            model,
            cache,
            canvas_length=length,
            batch=len(specs),
            seed_canvas=seed,
            pinned=pinned,
            generation=model.generation,
            generator=gen,
            cancel=cancel,
            denoise=denoise,
        )
        tokens, steps = result.tokens.cpu(), result.stats.steps

    stops = [*model.stop_ids, specials.pad]
    middles = [lay.middle_ids(row.tolist(), s.free_len, stops) for row, s in zip(tokens, specs, strict=True)]
    # Retrieved texts are scored in the same pass as the model's answers, so one scale ranks them all. A compiled
    # step pads their rows to req.retrieved, so the scoring pass keeps the one shape step_shapes warmed up.
    rows = len(middles)
    middles += [(ids, True) for ids, _ in found]
    hyps = [*hyps, *[None] * len(found)]
    origins += ["retrieved"] * len(found)
    matches: list[retrieve.Match | None] = [None] * rows + [m for _, m in found]
    if denoise is not None and req.retrieve:
        middles += [middles[0]] * (req.retrieved - len(found))
    # Score every layout against the same pinned suffix tail: A's prompt is C's, so a C-shaped canvas is in
    # distribution for it too, and "agreement with the suffix" then means the same thing for all layouts.
    score_tail = tail if layout.pins_suffix else lay.pinned_tail(tok, lay.Layout.C, built.tail_text, k)
    # Always k tail slots: a shorter suffix (the file's last lines) gets pads before it, as after any eos, so the
    # scoring canvas has one length per canvas plan and a compiled step never meets a new shape here.
    padded_tail = [specials.pad] * (max(k, 0) - len(score_tail)) + score_tail
    score_len = max([free_len, *(len(ids) + 1 for ids, _ in found)])
    scoring = [lay.scoring_canvas(m, score_len, padded_tail, specials.eos, specials.pad) for m, _ in middles]
    ends = [min(len(m), score_len - 1) for m, _ in middles]
    conf, agree = score_rows(model, cache, torch.tensor(scoring, device=device), ends, len(score_tail), denoise)

    ctx = pp.Context(
        prefix=window.prefix,
        suffix=window.suffix,
        multiline=multiline,
        indent=pp.detect_indent(window.prefix + window.suffix),
        chat=fmt is lay.PromptFormat.GEMMA_CHAT,
    )
    rejected: dict[str, int] = {}
    kept: list[Candidate] = []
    n = len(origins)  # rows past n only pad the scoring batch
    sources = (req.text, *(s.text for s in req.snippets))
    # Errors of the window with nothing inserted: what a window cut mid-construct has anyway, for each candidate's
    # count to be compared with.
    base_errors = syntax.error_count(req.language, window.prefix + window.suffix)
    for (ids, _stopped), h, c, a, origin, match in zip(
        middles[:n], hyps, conf[:n], agree[:n], origins, matches, strict=True
    ):
        done = pp.finish(tok.decode(ids), ctx)
        if done.reject:
            rejected[done.reject] = rejected.get(done.reject, 0) + 1
            continue
        ev = calibrate.Evidence(
            confidence=c,
            agreement=a,
            tokens=len(ids),
            retrieved=match is not None,
            context=match.context if match else 0,
            typed=match.typed if match else 0,
            shared=match.shared if match else 0,
            after=match.after if match else 0,
            renamed=match.renamed if match else 0,
            attested=calibrate.attested(done.text, *sources),
            symbols_only=calibrate.symbols_only(done.text),
            errors_added=syntax.errors_added(
                req.language, window.prefix, done.text, window.suffix[done.replace :], base_errors
            ),
        )
        kept.append(
            Candidate(
                done.text,
                req.cursor,
                req.cursor + done.replace,
                fit.score(ev),
                c,
                a,
                h,
                origin=origin,
                evidence=ev,
            )
        )
    return InfillResult(
        candidates=select(kept, req.max_candidates),
        steps=steps,
        seconds=time.perf_counter() - started,
        prompt_tokens=len(prompt),
        layout=layout.value,
        prompt_format=fmt.value,
        rejected=rejected,
        canvases=tokens.tolist(),
        tail=tail,
        retrieved=len(found),
        model_rows=rows,
        unwritten=unwritten,
    )


def complete(
    model,
    req: InfillRequest,
    cancel: Callable[[], bool] | None = None,
    encoder: Encoder | None = None,
    denoise: Callable | None = None,
) -> list[Candidate]:
    """Ranked completions for the cursor (best first); empty when every hypothesis was rejected."""
    return run_infill(model, req, cancel=cancel, encoder=encoder, denoise=denoise).candidates
