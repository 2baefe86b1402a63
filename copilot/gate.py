"""The gate: nothing is shown when the best candidate's score is below `completion.min_score`.

A weak model's low-scored guesses are mostly noise; hiding them costs a little coverage and spares the user
from reading them. The score is the engine's calibrated log-probability that a candidate is useful
(dcopilot.engine.tasks.calibrate, so <= 0); the default threshold was chosen on the held-out calibration split
(bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class _Scored(Protocol):
    @property
    def score(self) -> float: ...


T = TypeVar("T", bound=_Scored)


def gate(candidates: Sequence[T], min_score: float | None) -> list[T]:
    """The candidates to show: those scoring at least `min_score` (all of them with no gate, None), in their order
    (best first)."""
    return [c for c in candidates if min_score is None or c.score >= min_score]


def why_hidden(candidates: Sequence[_Scored], min_score: float | None, unwritten: float | None = None) -> str | None:
    """Why nothing is shown: the best score against the threshold, or, with no candidate because the model's own
    answers could score at most `unwritten` (so none was written) and nothing was found to retrieve, that; None
    when something passes or nothing says why."""
    if min_score is None:
        return None
    if not candidates:
        if unwritten is None:
            return None
        return (
            f"no continuation from the workspace fits here, and the model's own completions score at most "
            f"{unwritten:.2f}, below completion.min_score {min_score:.2f}"
        )
    if gate(candidates, min_score):
        return None
    best = max(c.score for c in candidates)
    return f"best candidate's score {best:.2f} is below completion.min_score {min_score:.2f}"
