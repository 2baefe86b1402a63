"""The task layer's requests: what infill and edit are asked to do, as plain data (no torch).

The constants below are the only place each default is written: the request dataclasses, copilot/config.py and
the LSP client settings take theirs from here, and copilot/requests.py builds each request from the settings in
effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Multiline = Literal["auto", "always", "never"]
PromptFormatSetting = Literal["auto", "fim", "gemma-chat"]

MAX_TOKENS = 64  # canvas length budget for the middle (tokens)
HYPOTHESES = 3  # length hypotheses per request (canvases in one batch)
CONTEXT_TOKENS = 1024  # prompt window (prefix + suffix)
MULTILINE: Multiline = "auto"
PROMPT_FORMAT: PromptFormatSetting = "auto"  # auto: the checkpoint's own, else FIM when the tokenizer has it
SEED = 0
RENOISE = 0.5  # fraction of an edit's seeded canvas re-noised
CANDIDATES = 3  # distinct completions returned at most
# the gate: nothing is shown below this engine score (a sum of mean log-probabilities, <= 0); chosen on the
# held-out calibration split, bench/RESULTS.md
MIN_SCORE = -1.0
EDIT_CANDIDATES = 4  # draws of each edit canvas (one batch), tried best first
# the edit gate: a rewrite scoring below this is not offered (engine/tasks/edit.py's masked_scores, <= 0); chosen
# on the held-out edit tasks' calibration split, bench/RESULTS.md
EDIT_MIN_SCORE = -2.72


@dataclass(frozen=True)
class InfillRequest:
    text: str  # the document (or a window of it)
    cursor: int  # code-point offset into text
    language: str = ""
    path: str = ""
    max_tokens: int = MAX_TOKENS
    multiline: str = MULTILINE  # auto | always | never
    layout: str | None = None  # A | B | C; None/"auto": the model's default (see ModelPrompting.layout)
    hypotheses: int = HYPOTHESES
    context_tokens: int = CONTEXT_TOKENS
    prompt_format: str = PROMPT_FORMAT  # auto | fim | gemma-chat
    pinned_suffix_tokens: int | None = None  # K for layouts B/C; None: the model's trained default
    seed: int = SEED
    max_candidates: int = CANDIDATES


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
    candidates: int = EDIT_CANDIDATES
    min_score: float = EDIT_MIN_SCORE
