"""In-line edit of a document range: the canvas starts as the existing text, partly re-noised, and the model
denoises it with the context before and after visible as in infill (and the instruction in the prompt).

The answer comes back as minimal text edits against the original range; they never touch text outside it. A
range longer than one canvas is split at line boundaries into several canvases, rewritten in order (each sees the
chunks already rewritten before it). A range that needs more canvases than allowed is refused with a clear error
rather than edited in part.

Each canvas is drawn several times (rows of one batch, each with its own re-noised slots) and every draw is scored
like a completion (the model's confidence in it, plus its agreement with the pinned suffix). Draws are tried best
first; one that breaks the syntax or replaces code with comments (engine/tasks/syntax.py) is dropped and the next
is considered. Nothing is offered when the chosen rewrite scores below the gate (`min_score`); `refused` then says
why, and so it does when every draw was dropped. An instruction that names an exact refactoring (rename an
identifier, add a parameter: engine/tasks/refactor.py) is made by the parser instead, and the model is not run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from dcopilot.engine.tasks import layout as lay
from dcopilot.engine.tasks import postprocess as pp
from dcopilot.engine.tasks import refactor
from dcopilot.engine.tasks.infill import Encoder, noise_fill
from dcopilot.engine.tasks.prompting import prompting
from dcopilot.engine.tasks.requests import EditRequest
from dcopilot.engine.tasks.syntax import breakage
from dcopilot.engine.tasks.textdiff import TextEdit, diff_edits
from dcopilot.engine.tasks.window import split_lines


class EditTooLong(ValueError):
    """The range does not fit the edit budget (canvases x canvas length); nothing was edited."""


UNUSABLE = "is empty or repetitive"  # EditCandidate.dropped, next to syntax.breakage's reasons
BELOW_GATE = "below the confidence threshold"


@dataclass(frozen=True)
class EditCandidate:
    text: str  # the draw's rewrite of its chunk ("" when unusable)
    score: float  # masked_scores: mean log-probability of the rewrite, each token hidden in turn (<= 0)
    dropped: str | None = None  # UNUSABLE or syntax.breakage's reason; None: it may be offered


@dataclass
class EditResult:
    edits: list[TextEdit]  # sorted, non-overlapping, inside [start, end]; [] when refused
    rewritten: str  # new text of the range (the original when refused)
    original: str
    steps: int
    seconds: float
    canvases: int
    kept_chunks: list[int] = field(default_factory=list)  # chunks left as they were because every draw was dropped
    score: float | None = None  # mean score of the chosen draws; None when no chunk had one
    refused: str = ""  # why nothing is offered; "" when edits are offered or the model kept the range
    draws: list[list[EditCandidate]] = field(default_factory=list)  # per chunk, best first
    exact: str = ""  # the kind of refactoring the parser made without the model (refactor.exact); "" otherwise


def refusal(draws: list[list[EditCandidate]], changed: bool, score: float | None, min_score: float) -> str:
    """Why a rewrite is not offered, "" when it may be. draws: the dropped draws of the chunks that kept their text
    because none was left (only those); changed: whether the chosen draws change the range; score: their mean."""
    if not changed:
        reasons = sorted({d.dropped for chunk in draws for d in chunk if d.dropped})
        return f"no rewrite: every candidate {' or '.join(reasons)}" if reasons else ""
    if score is not None and score < min_score:
        return f"no rewrite: {BELOW_GATE} (the best candidate scores {score:.2f}, edit.min_score is {min_score:.2f})"
    return ""


@torch.no_grad()
def masked_scores(
    model,
    cache,
    canvases: list[list[int]],
    ends: list[int],
    generator: torch.Generator,
    denoise: Callable | None = None,
) -> list[float]:
    """Mean log-probability of each canvas's positions 0..ends[b] (the rewrite and its end token), each read with
    that position re-noised: one pass hides the even positions, a second the odd ones, so every token is judged
    from its neighbours and the context but never from itself (a denoiser shown a clean token mostly copies it,
    which says nothing about the draw)."""
    noise_id = model.generation.noise_token_id
    vocab = model.config.vocab_size
    rows, hidden = [], []
    for parity in (0, 1):
        for canvas, end in zip(canvases, ends, strict=True):
            mask = [i <= end and i % 2 == parity for i in range(len(canvas))]
            rows.append(
                noise_fill(
                    [lay.NOISE if m else t for t, m in zip(canvas, mask, strict=True)], vocab, generator, noise_id
                )
            )
            hidden.append(mask)
    device = next(model.parameters()).device
    batch = torch.stack(rows).to(device)
    clean = torch.tensor(canvases + canvases, dtype=torch.long, device=device)
    logp = torch.log_softmax((denoise or model.denoise)(batch, cache).float(), dim=-1)
    tok_logp = logp.gather(-1, clean[..., None]).squeeze(-1).cpu()
    where = torch.tensor(hidden, dtype=torch.float32)
    n = len(canvases)
    total = (tok_logp * where)[:n].sum(-1) + (tok_logp * where)[n:].sum(-1)
    count = where[:n].sum(-1) + where[n:].sum(-1)
    return (total / count.clamp(min=1)).tolist()


def split_range(text: str, count: Callable[[str], int], capacity: int) -> list[str]:
    """Consecutive chunks of whole lines, each at most `capacity` tokens; EditTooLong if one line alone is over."""
    chunks: list[str] = []
    current, used = "", 0
    for line in split_lines(text):
        n = count(line)
        if n > capacity:
            raise EditTooLong(f"a line of {n} tokens does not fit an edit canvas ({capacity} tokens)")
        if current and used + n > capacity:
            chunks.append(current)
            current, used = "", 0
        current += line
        used += n
    if current:
        chunks.append(current)
    return chunks


def _clean_rewrite(raw: str, original: str, chat: bool) -> str | None:
    """The model's rewrite with the original's line-break conventions, or None when it is unusable."""
    text = raw.replace("\r\n", "\n")
    if chat:
        text = pp.strip_fences(text)
    if not text.strip() or pp.is_repetitive(text):
        return None
    plain = original.replace("\r\n", "\n")
    # The range boundary is fixed: keep its final line break (or its absence), or lines would join or split.
    text = text.rstrip("\n") + ("\n" if plain.endswith("\n") else "")
    return text.replace("\n", "\r\n") if "\r\n" in original else text


@torch.no_grad()
def rewrite(
    model,
    req: EditRequest,
    cancel: Callable[[], bool] | None = None,
    encoder: Encoder | None = None,
    denoise: Callable | None = None,
) -> EditResult:
    """denoise: a drop-in for model.denoise in the step loop (dcopilot.engine.runtime.static.StaticDenoise)."""
    from dcopilot.engine.runtime.sampler import sample

    started = time.perf_counter()
    if not 0 <= req.start < req.end <= len(req.text):
        raise ValueError(f"edit range {req.start}..{req.end} is empty or outside the document (length {len(req.text)})")
    if not 0.0 <= req.renoise <= 1.0:
        raise ValueError("renoise must be between 0 and 1")
    original = req.text[req.start : req.end]
    # An instruction with one right answer (rename `a` to `b`, add a parameter `p`) gets it from the parser,
    # certain (score 0.0), unless the result would not parse; anything else is the model's.
    made = refactor.exact(req.language, req.text, req.start, req.end, req.instruction)
    if made is not None:
        what, refactored = made
        whole = req.text[: req.start] + refactored + req.text[req.end :]
        if breakage(req.language, req.text, whole, original, refactored) is None:
            seconds = time.perf_counter() - started
            return EditResult(
                diff_edits(original, refactored, base=req.start),
                refactored,
                original,
                0,
                seconds,
                0,
                score=0.0,
                exact=what,
            )
    tok = model.tokenizer
    facts = prompting(model)
    specials = facts.required_specials()
    fmt = facts.format(req.prompt_format)
    layout = facts.layout(req.layout, fmt)
    k = facts.pinned(req.pinned_suffix_tokens)
    length = facts.edit_canvas_length(model.canvas_length)
    free = length - (k if layout.pins_suffix else 0) - 1
    capacity = int(free / (1.0 + req.growth))
    if capacity < 1:
        raise EditTooLong(f"canvas of {length} slots leaves no room for an edit")

    def count(s: str) -> int:
        return len(tok.encode(s))

    chunks = split_range(original, count, capacity)
    if len(chunks) > req.max_canvases:
        raise EditTooLong(
            f"the range needs {len(chunks)} canvases of {capacity} tokens; the limit is {req.max_canvases} "
            "(select a shorter range)"
        )

    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(req.seed)
    cpu_gen = torch.Generator().manual_seed(req.seed)
    vocab = model.config.vocab_size
    stops = [*model.stop_ids, specials.pad]
    budget = facts.context_budget(req.context_tokens)
    chat = fmt is lay.PromptFormat.GEMMA_CHAT
    done: list[str] = []
    kept: list[int] = []
    steps = 0
    rows = req.candidates
    draws: list[list[EditCandidate]] = []
    scores: list[float] = []
    for i, chunk in enumerate(chunks):
        before = req.text[: req.start] + "".join(done)
        after = "".join(chunks[i + 1 :]) + req.text[req.end :]
        parts = lay.PromptParts(
            path=req.path,
            prefix="",
            suffix="",
            language=req.language,
            instruction=req.instruction,
            draft=chunk if chat else None,
            snippets=req.snippets,
        )
        built = lay.cursor_prompt(tok, specials, fmt, layout, before + after, len(before), budget, k, parts)
        prompt, tail = built.ids, built.tail
        draft = tok.encode(chunk)
        free_len = length - len(tail)
        specs = [
            lay.assemble_edit_canvas(
                length,
                draft,
                tail,
                specials.eos,
                specials.pad,
                (torch.rand(free_len, generator=cpu_gen) < req.renoise).tolist(),
            )
            for _ in range(rows)
        ]
        noise_id = model.generation.noise_token_id
        seed = torch.stack([noise_fill(sp.seed, vocab, cpu_gen, noise_id) for sp in specs]).to(device)
        pinned = torch.tensor([sp.pinned for sp in specs], dtype=torch.bool, device=device)
        cache = (encoder or model.encode)(torch.tensor([prompt], dtype=torch.long, device=device))
        result = sample(
            model,
            cache,
            canvas_length=length,
            batch=rows,
            seed_canvas=seed,
            pinned=pinned,
            generation=model.generation,
            generator=gen,
            cancel=cancel,
            denoise=denoise,
        )
        steps += result.stats.steps
        middles = [lay.middle_ids(row, free_len, stops)[0] for row in result.tokens.cpu().tolist()]
        # Scored with the same pinned suffix tail in every layout, as completions are (engine/tasks/infill.py).
        score_tail = tail if layout.pins_suffix else lay.pinned_tail(tok, lay.Layout.C, built.tail_text, k)
        padded_tail = [specials.pad] * (max(k, 0) - len(score_tail)) + score_tail
        scoring = [lay.scoring_canvas(m, free_len, padded_tail, specials.eos, specials.pad) for m in middles]
        ends = [min(len(m), free_len - 1) for m in middles]
        scores_now = masked_scores(model, cache, scoring, ends, cpu_gen, denoise)

        rest = "".join(chunks[i + 1 :]) + req.text[req.end :]
        ranked: dict[str, EditCandidate] = {}
        for m, sc in sorted(zip(middles, scores_now, strict=True), key=lambda r: -r[1]):
            new = _clean_rewrite(tok.decode(m), chunk, chat)
            text = new or ""
            if text in ranked:
                continue  # the same rewrite drawn twice: its best score stands
            if new is None:
                why: str | None = UNUSABLE
            else:
                why = breakage(req.language, before + chunk + rest, before + new + rest, chunk, new)
            ranked[text] = EditCandidate(text, sc, why)
        chunk_draws = list(ranked.values())
        draws.append(chunk_draws)
        chosen = next((d for d in chunk_draws if d.dropped is None), None)
        if chosen is None:
            kept.append(i)
            done.append(chunk)
        else:
            done.append(chosen.text)
            scores.append(chosen.score)

    rewritten = "".join(done)
    score = sum(scores) / len(scores) if scores else None
    why_not = refusal([draws[i] for i in kept], rewritten != original, score, req.min_score)
    if why_not:
        rewritten = original
    return EditResult(
        edits=diff_edits(original, rewritten, base=req.start),
        rewritten=rewritten,
        original=original,
        steps=steps,
        seconds=time.perf_counter() - started,
        canvases=len(chunks),
        kept_chunks=kept,
        score=score,
        refused=why_not,
        draws=draws,
    )
