"""Client settings: `initializationOptions` and `workspace/didChangeConfiguration`, applied live.

The field names are the camelCase keys editors send. Settings may arrive bare or under a "dcopilot" key.
An invalid value is reported (the caller shows it) and the previous settings stay in force; unknown keys are
ignored so an older server works with a newer editor plugin.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from dcopilot.engine.tasks import requests as defaults

DEBOUNCE_MS = 75  # base debounce before a completion runs; the scheduler adapts it to typing speed
# Bounds shared with copilot/config.py's [completion] section.
DebounceMs = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
# 0 (defaults.AUTO): the default of the device the model runs on (engine/tasks/requests.py DEVICE_DEFAULTS)
MaxTokens = Annotated[int, msgspec.Meta(ge=0, le=4096)]
Hypotheses = Annotated[int, msgspec.Meta(ge=0, le=16)]
# Engine scores are <= 0; -100 lets every candidate through.
MinScore = Annotated[float, msgspec.Meta(ge=-100.0, le=0.0)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    enable: bool = True  # answer completion requests at all
    debounce_ms: DebounceMs = DEBOUNCE_MS
    max_tokens: MaxTokens = defaults.MAX_TOKENS  # canvas budget per suggestion; 0: the device's
    hypotheses: Hypotheses = defaults.HYPOTHESES  # length hypotheses per request; 0: the device's
    multiline: defaults.Multiline = defaults.MULTILINE
    min_score: MinScore = defaults.MIN_SCORE  # the gate: nothing is shown when the best scores below it
    candidates: Annotated[int, msgspec.Meta(ge=1, le=8)] = defaults.CANDIDATES  # on an invoked (manual) trigger
    speculative: bool = False  # after a suggestion is shown, precompute the one that follows its acceptance
    # textDocument/completion items: "auto" = only for clients that do not support inline completion
    completion_items: Literal["auto", "always", "never"] = "auto"


def update(current: Settings, raw: object) -> tuple[Settings, str | None]:
    """`current` with the keys in `raw` applied; on a bad value, `current` unchanged and the reason."""
    if raw is None:
        return current, None
    if isinstance(raw, dict) and isinstance(raw.get("dcopilot"), dict):
        raw = raw["dcopilot"]
    if not isinstance(raw, dict):
        return current, f"settings must be an object, got {type(raw).__name__}"
    merged = {**msgspec.to_builtins(current), **raw}
    known = {f.encode_name for f in msgspec.structs.fields(Settings)}
    try:
        return msgspec.convert({k: v for k, v in merged.items() if k in known}, Settings), None
    except msgspec.ValidationError as exc:
        return current, f"invalid dcopilot setting: {exc}"
