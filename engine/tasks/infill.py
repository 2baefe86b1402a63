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
    score: float  # confidence + suffix agreement (higher is better)
    confidence: float  # mean log-probability of the middle and its end token
    suffix_agreement: float  # mean log-probability of the first suffix tokens after this middle (0.0: no suffix)
    hypothesis: int | None  # pinned middle length, None = free length
    votes: int = 1  # hypotheses that produced the same text


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
    for mode in modes:
        length, hyps = canvas_plan(model, req.max_tokens, mode, pinned, req.hypotheses)
        shapes.append(StepShape(len(hyps), length))
        if length - pinned + k != length:
            shapes.append(StepShape(len(hyps), length - pinned + k, sampled=False))
    longest = facts.context_budget(req.context_tokens) + HEADER_RESERVE
    if not chosen.suffix_in_prompt:
        longest += tail_text_budget(k)
    return list(dict.fromkeys(shapes)), longest


@torch.no_grad()
def score_rows(
    model, cache, canvas: torch.Tensor, ends: list[int], tail_len: int, denoise: Callable | None = None
) -> tuple[list[float], list[float]]:
    """(confidence, suffix agreement) per row from one denoiser pass over the committed canvases.

    Confidence: mean log-probability of positions 0..ends[b] (the middle and its end token). Agreement: mean
    log-probability of the last `tail_len` positions (the suffix tail given the middle), 0.0 when there is none.
    """
    logp = torch.log_softmax((denoise or model.denoise)(canvas, cache), dim=-1)
    tok_logp = logp.gather(-1, canvas[..., None]).squeeze(-1)  # [B, L]
    L = canvas.shape[1]
    pos = torch.arange(L)
    head = pos[None, :] <= torch.tensor(ends)[:, None]
    conf = (tok_logp * head).sum(-1) / head.sum(-1)
    if tail_len:
        agree = tok_logp[:, L - tail_len :].mean(-1)
    else:
        agree = torch.zeros(canvas.shape[0])
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
    specs = [lay.assemble_canvas(length, tail, h, specials.eos, specials.pad) for h in hyps]

    device = next(model.parameters()).device
    gen = generator or torch.Generator(device=device).manual_seed(req.seed)
    cpu_gen = torch.Generator().manual_seed(req.seed)
    vocab = model.config.vocab_size
    seed = torch.stack([noise_fill(s.seed, vocab, cpu_gen, model.generation.noise_token_id) for s in specs]).to(device)
    pinned = torch.tensor([s.pinned for s in specs], dtype=torch.bool, device=device)

    prompt_ids = torch.tensor([prompt], dtype=torch.long, device=device)
    cache = (encoder or model.encode)(prompt_ids)
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
    tokens = result.tokens.cpu()

    stops = [*model.stop_ids, specials.pad]
    middles = [lay.middle_ids(row.tolist(), s.free_len, stops) for row, s in zip(tokens, specs, strict=True)]
    # Score every layout against the same pinned suffix tail: A's prompt is C's, so a C-shaped canvas is in
    # distribution for it too, and "agreement with the suffix" then means the same thing for all layouts.
    score_tail = tail if layout.pins_suffix else lay.pinned_tail(tok, lay.Layout.C, built.tail_text, k)
    # Always k tail slots: a shorter suffix (the file's last lines) gets pads before it, as after any eos, so the
    # scoring canvas has one length per canvas plan and a compiled step never meets a new shape here.
    padded_tail = [specials.pad] * (max(k, 0) - len(score_tail)) + score_tail
    scoring = [
        lay.scoring_canvas(m, s.free_len, padded_tail, specials.eos, specials.pad)
        for (m, _), s in zip(middles, specs, strict=True)
    ]
    ends = [min(len(m), s.free_len - 1) for (m, _), s in zip(middles, specs, strict=True)]
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
    for (ids, _stopped), h, c, a in zip(middles, hyps, conf, agree, strict=True):
        done = pp.finish(tok.decode(ids), ctx)
        if done.reject:
            rejected[done.reject] = rejected.get(done.reject, 0) + 1
            continue
        kept.append(Candidate(done.text, req.cursor, req.cursor + done.replace, c + a, c, a, h))
    return InfillResult(
        candidates=select(kept, req.max_candidates),
        steps=result.stats.steps,
        seconds=time.perf_counter() - started,
        prompt_tokens=len(prompt),
        layout=layout.value,
        prompt_format=fmt.value,
        rejected=rejected,
        canvases=tokens.tolist(),
        tail=tail,
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
