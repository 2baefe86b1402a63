"""In-line edit of a document range: the canvas starts as the existing text, partly re-noised, and the model
denoises it with the context before and after visible as in infill (and the instruction in the prompt).

The answer comes back as minimal text edits against the original range; they never touch text outside it. A
range longer than one canvas is split at line boundaries into several canvases, rewritten in order (each sees the
chunks already rewritten before it). A range that needs more canvases than allowed is refused with a clear error
rather than edited in part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from dcopilot.engine.tasks import layout as lay
from dcopilot.engine.tasks import postprocess as pp
from dcopilot.engine.tasks.infill import Encoder, noise_fill
from dcopilot.engine.tasks.prompting import prompting
from dcopilot.engine.tasks.requests import EditRequest
from dcopilot.engine.tasks.textdiff import TextEdit, diff_edits
from dcopilot.engine.tasks.window import split_lines


class EditTooLong(ValueError):
    """The range does not fit the edit budget (canvases x canvas length); nothing was edited."""


@dataclass
class EditResult:
    edits: list[TextEdit]  # sorted, non-overlapping, inside [start, end]
    rewritten: str  # new text of the range
    original: str
    steps: int
    seconds: float
    canvases: int
    kept_chunks: list[int] = field(default_factory=list)  # chunks left unchanged because the output was rejected


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

    original = req.text[req.start : req.end]
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
        noised = (torch.rand(free_len, generator=cpu_gen) < req.renoise).tolist()
        spec = lay.assemble_edit_canvas(length, draft, tail, specials.eos, specials.pad, noised)
        seed = noise_fill(spec.seed, vocab, cpu_gen, model.generation.noise_token_id)[None].to(device)
        pinned = torch.tensor([spec.pinned], dtype=torch.bool, device=device)
        cache = (encoder or model.encode)(torch.tensor([prompt], dtype=torch.long, device=device))
        result = sample(
            model,
            cache,
            canvas_length=length,
            batch=1,
            seed_canvas=seed,
            pinned=pinned,
            generation=model.generation,
            generator=gen,
            cancel=cancel,
            denoise=denoise,
        )
        steps += result.stats.steps
        ids, _ = lay.middle_ids(result.tokens[0].tolist(), spec.free_len, stops)
        new = _clean_rewrite(tok.decode(ids), chunk, chat)
        if new is None:
            kept.append(i)
            new = chunk
        done.append(new)

    rewritten = "".join(done)
    return EditResult(
        edits=diff_edits(original, rewritten, base=req.start),
        rewritten=rewritten,
        original=original,
        steps=steps,
        seconds=time.perf_counter() - started,
        canvases=len(chunks),
        kept_chunks=kept,
    )
