"""The score fit a checkpoint carries: `score_fit.json` beside its weights (dcopilot.engine.tasks.calibrate).

The calibrated score reads the model's own log-probabilities, whose scale differs from one checkpoint to another,
so a fit holds for the checkpoint it was fitted on only. A checkpoint without one (DiffusionGemma as released, a
model just trained) is ranked with the embedded model's fit, and marked unfitted: its scores are no probability,
and the caller does not gate by them (bench/calibrate_score.py --write fits one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dcopilot.engine.runtime.loader import EMBEDDED_DIR
from dcopilot.engine.tasks.calibrate import ScoreFit

FILE = "score_fit.json"


@dataclass(frozen=True)
class Fitted:
    fit: ScoreFit
    own: bool  # fitted on this checkpoint (False: the embedded model's fit, for ranking only)


class ScoreFitError(ValueError):
    pass


def read(file: Path) -> ScoreFit:
    """The fit in `file`; ScoreFitError naming the file and what is wrong."""
    try:
        return ScoreFit.from_json(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise ScoreFitError(f"{file}: not a score fit ({e}); refit with bench/calibrate_score.py --write") from None


@cache
def for_checkpoint(path: Path | None) -> Fitted:
    """The fit of the checkpoint in directory `path` (read once per process), else the embedded model's."""
    if path is not None and (path / FILE).exists():
        return Fitted(read(path / FILE), True)
    return Fitted(read(EMBEDDED_DIR / FILE), False)


def of_model(model) -> Fitted:
    """The fit for a loaded model (its checkpoint directory is `model.path`)."""
    path = getattr(model, "path", None)
    return for_checkpoint(Path(path) if path is not None else None)


def write(path: Path, fit: ScoreFit, fitted_on: str) -> Path:
    """Write `fit` beside the checkpoint in directory `path` (what `for_checkpoint` reads next time)."""
    file = path / FILE
    file.write_text(json.dumps({**fit.to_json(), "fitted_on": fitted_on}, indent=2) + "\n", encoding="utf-8")
    for_checkpoint.cache_clear()  # a fit read before this one is stale now
    return file
