"""The task layer's requests: what infill and edit are asked to do, as plain data (no torch).

The constants below are the only place each default is written: the request dataclasses, copilot/config.py and
the LSP client settings take theirs from here, and copilot/requests.py builds each request from the settings in
effect.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Multiline = Literal["auto", "always", "never"]
PromptFormatSetting = Literal["auto", "fim", "gemma-chat"]

AUTO = 0  # a max_tokens or hypotheses of 0: the default of the device the model runs on (DEVICE_DEFAULTS)


@dataclass(frozen=True)
class DeviceDefaults:
    max_tokens: int  # canvas length budget for the middle (tokens)
    hypotheses: int  # length hypotheses per request (canvases in one batch)
    torch_threads: int  # intra-op threads for the model (model.threads = 0); 0: torch's own (one per core)


# On a GPU the denoise step is bound by reading the weights, so more canvases and slots cost little. On a CPU every
# canvas slot costs step time (the vocabulary-wide head, softmax and self-conditioning dominate), and the embedded
# model's suggestions were no worse with 2 hypotheses in 16 slots. One intra-op thread on a CPU: the server's own
# threads and the editor need a core too, and a thread pool that loses a core to them stalls at every op
# (bench/RESULTS.md, "Language server latency").
DEVICE_DEFAULTS = {
    "cuda": DeviceDefaults(max_tokens=64, hypotheses=3, torch_threads=0),
    "cpu": DeviceDefaults(max_tokens=16, hypotheses=2, torch_threads=1),
}
MAX_TOKENS = AUTO
HYPOTHESES = AUTO
CONTEXT_TOKENS = 1024  # prompt window (prefix + suffix)
MULTILINE: Multiline = "auto"
PROMPT_FORMAT: PromptFormatSetting = "auto"  # auto: the checkpoint's own, else FIM when the tokenizer has it
SEED = 0
RENOISE = 0.5  # fraction of an edit's seeded canvas re-noised
CANDIDATES = 3  # distinct completions returned at most
# the gate: nothing is shown below this engine score (the calibrated log P(useful), <= 0); chosen on the
# held-out calibration split, bench/RESULTS.md
MIN_SCORE = -2.0
# Cross-file context: snippets get at most this share of context_tokens, the current file's window the rest.
SNIPPET_SHARE = 0.25
SNIPPETS = 3  # snippets sent with a request at most (best-ranked windows of other documents and recent edits)
RETRIEVE = True  # continuations found in the document and its snippets join the model's hypotheses
RETRIEVED = 4  # retrieved candidates scored per request at most
SEED_CANVAS = False  # the best retrieved candidate also seeds an extra canvas, partly re-noised, for the model to edit
EDIT_CANDIDATES = 4  # draws of each edit canvas (one batch), tried best first
# the edit gate: a rewrite scoring below this is not offered (engine/tasks/edit.py's masked_scores, <= 0); chosen
# on the held-out edit tasks' calibration split (bench/RESULTS.md): the embedded model's rewrites were never right
# there, so only exact refactorings (score 0.0, engine/tasks/refactor.py) pass; lower it for a stronger model
EDIT_MIN_SCORE = 0.0


@dataclass(frozen=True)
class Snippet:
    path: str  # workspace-relative path of the file the snippet comes from ("" if unknown)
    text: str  # the snippet's text (a window of lines)


@dataclass(frozen=True)
class InfillRequest:
    text: str  # the document (or a window of it)
    cursor: int  # code-point offset into text
    language: str = ""
    path: str = ""
    max_tokens: int = MAX_TOKENS  # AUTO: the device's (for_device)
    multiline: str = MULTILINE  # auto | always | never
    layout: str | None = None  # A | B | C; None/"auto": the model's default (see ModelPrompting.layout)
    hypotheses: int = HYPOTHESES  # AUTO: the device's (for_device)
    context_tokens: int = CONTEXT_TOKENS
    prompt_format: str = PROMPT_FORMAT  # auto | fim | gemma-chat
    pinned_suffix_tokens: int | None = None  # K for layouts B/C; None: the model's trained default
    seed: int = SEED
    max_candidates: int = CANDIDATES
    snippets: tuple[Snippet, ...] = ()  # best-ranked first
    retrieve: bool = RETRIEVE
    retrieved: int = RETRIEVED
    seed_canvas: bool = SEED_CANVAS
    renoise: float = RENOISE  # fraction of a seeded canvas re-noised
    # the gate the caller applies (completion.min_score): work whose every result would score below it is skipped;
    # None: no gate, every candidate is wanted
    min_score: float | None = None


@dataclass(frozen=True)
class EditRequest:
    text: str  # the document
    start: int  # range to rewrite, code points, end exclusive
    end: int
    instruction: str = ""
    language: str = ""
    path: str = ""
    renoise: float = RENOISE
    layout: str | None = None
    prompt_format: str = PROMPT_FORMAT
    context_tokens: int = CONTEXT_TOKENS
    pinned_suffix_tokens: int | None = None
    growth: float = 0.5  # room left in each canvas for the rewrite to be longer than the original
    max_canvases: int = 8
    seed: int = SEED
    snippets: tuple[Snippet, ...] = ()  # cross-file context, best-ranked first
    candidates: int = EDIT_CANDIDATES
    min_score: float = EDIT_MIN_SCORE


def device_defaults(device: str) -> DeviceDefaults:
    """The defaults for a torch device type or name ("cuda:1" is cuda); any other device runs like a CPU."""
    return DEVICE_DEFAULTS["cuda" if device.partition(":")[0] == "cuda" else "cpu"]


def for_device(req: InfillRequest, device: str) -> InfillRequest:
    """`req` with AUTO max_tokens and hypotheses replaced by the device's defaults (other values kept)."""
    d = device_defaults(device)
    if req.max_tokens != AUTO and req.hypotheses != AUTO:
        return req
    return replace(
        req,
        max_tokens=req.max_tokens if req.max_tokens != AUTO else d.max_tokens,
        hypotheses=req.hypotheses if req.hypotheses != AUTO else d.hypotheses,
    )
