"""The one path from settings to the engine: the model a config names, and each engine request built from config.

`dcopilot serve`, `complete`, `edit` and `eval` all come through here, so a setting means the same thing in
each. Per-request values (the editor's client settings, an eval's layout) are passed as overrides; None keeps the
config's value. Engine modules are imported inside the functions: importing this file does not import torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dcopilot.copilot.config import Config
from dcopilot.engine.tasks.requests import EditRequest, InfillRequest, Snippet, device_defaults

if TYPE_CHECKING:
    from dcopilot.engine.runtime.model import DiffusionGemma


def load_configured_model(config: Config) -> DiffusionGemma:
    """The model that config.model names (the embedded one when its path is empty), with model.threads applied."""
    import torch
    from dcopilot.engine.runtime.loader import load_model, pick_device
    from dcopilot.engine.tasks import score_fit

    m = config.model
    threads = torch_threads(m.threads, pick_device(m.device).type, os.environ)
    if threads:
        torch.set_num_threads(threads)
    model = load_model(
        m.path or None,
        device=m.device,
        dtype=None if m.dtype == "auto" else m.dtype,
        quantize=None if m.quantize == "none" else m.quantize,
    )
    score_fit.of_model(model)  # a corrupt score_fit.json fails the load, as corrupt weights do
    return model


def gate_for(model, min_score: float) -> float | None:
    """The gate to apply to `model`'s scores: `min_score` when its checkpoint carries a score fit of its own, None
    (no gate) when its scores come from another model's fit and so are no probability for it
    (dcopilot.engine.tasks.score_fit)."""
    from dcopilot.engine.tasks import score_fit

    return min_score if score_fit.of_model(model).own else None


def unfitted(path) -> str:
    """What to tell the user about a checkpoint in `path` that has no score fit of its own."""
    from dcopilot.engine.tasks.score_fit import FILE

    return (
        f"{path} has no score fit of its own ({FILE}): its completions are ranked with the embedded model's fit "
        "and not gated by completion.min_score; fit one with bench/calibrate_score.py --write"
    )


def torch_threads(setting: int, device: str, env: Mapping[str, str]) -> int:
    """Intra-op threads to set for model.threads on `device`; 0: leave torch as it is ($OMP_NUM_THREADS, which
    torch read at import, or torch's own default)."""
    if setting:
        return setting
    if env.get("OMP_NUM_THREADS"):
        return 0
    return device_defaults(device).torch_threads


def infill_request(
    config: Config,
    *,
    text: str,
    cursor: int,
    language: str = "",
    path: str = "",
    max_tokens: int | None = None,
    multiline: str | None = None,
    hypotheses: int | None = None,
    layout: str | None = None,
    seed: int | None = None,
    max_candidates: int | None = None,
    snippets: tuple[Snippet, ...] = (),
    min_score: float | None = None,
) -> InfillRequest:
    """min_score: the gate the caller will apply to what comes back (None: none; evaluations want every
    candidate), which lets the engine skip work whose results could not pass it."""
    c = config.completion
    extra: dict[str, Any] = {} if max_candidates is None else {"max_candidates": max_candidates}
    return InfillRequest(
        text=text,
        cursor=cursor,
        language=language,
        path=path,
        max_tokens=c.max_tokens if max_tokens is None else max_tokens,
        multiline=c.multiline if multiline is None else multiline,
        layout=c.layout if layout is None else layout,
        hypotheses=c.hypotheses if hypotheses is None else hypotheses,
        context_tokens=c.context_tokens,
        prompt_format=config.model.prompt_format,
        seed=c.seed if seed is None else seed,
        snippets=snippets[: c.snippets],
        retrieve=c.retrieve,
        seed_canvas=c.seed_canvas,
        renoise=config.edit.renoise,
        min_score=min_score,
        **extra,
    )


def edit_request(
    config: Config, *, text: str, start: int, end: int, instruction: str = "", language: str = "", path: str = ""
) -> EditRequest:
    c = config.completion
    return EditRequest(
        text=text,
        start=start,
        end=end,
        instruction=instruction,
        language=language,
        path=path,
        renoise=config.edit.renoise,
        candidates=config.edit.candidates,
        min_score=config.edit.min_score,
        layout=c.layout,
        prompt_format=config.model.prompt_format,
        context_tokens=c.context_tokens,
        seed=c.seed,
    )
