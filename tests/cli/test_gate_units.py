"""The gate (copilot/gate.py): which candidates pass `completion.min_score`, and the reason when none does."""

from dataclasses import dataclass

import pytest
from dcopilot.copilot.gate import gate, why_hidden


@dataclass(frozen=True)
class C:
    score: float
    name: str = ""


@pytest.mark.parametrize(
    "scores, min_score, kept",
    [
        ([], -1.0, []),
        ([-0.5, -0.8, -1.2], -1.0, [-0.5, -0.8]),
        ([-0.5, -0.8, -1.2], -100.0, [-0.5, -0.8, -1.2]),
        ([-1.0], -1.0, [-1.0]),  # at the threshold: shown
        ([-1.0000001], -1.0, []),
        ([-2.0, -3.0], -1.0, []),
        ([-0.2, -1.5, -0.9], -1.0, [-0.2, -0.9]),  # order kept, not re-ranked
        ([0.0], 0.0, [0.0]),
        ([-50.0, -0.5, -300.0], None, [-50.0, -0.5, -300.0]),  # no gate (a model without a score fit): all
    ],
)
def test_gate(scores, min_score, kept):
    assert [c.score for c in gate([C(s) for s in scores], min_score)] == kept


@pytest.mark.parametrize(
    "scores, min_score, reason",
    [
        ([], -1.0, None),  # nothing to hide: the engine found no candidate
        ([-0.5, -2.0], -1.0, None),
        ([-2.0, -1.25], -1.0, "best candidate's score -1.25 is below completion.min_score -1.00"),
        ([-7.123], -0.5, "best candidate's score -7.12 is below completion.min_score -0.50"),
        ([-7.123], None, None),  # no gate hides nothing
    ],
)
def test_why_hidden(scores, min_score, reason):
    assert why_hidden([C(s) for s in scores], min_score) == reason


@pytest.mark.parametrize(
    "scores, unwritten, reason",
    [
        # the model wrote nothing (its answers could score -3.34 at most) and nothing was retrieved
        (
            [],
            -3.344,
            "no continuation from the workspace fits here, and the model's own completions score at most "
            "-3.34, below completion.min_score -2.00",
        ),
        ([-2.5], -3.344, "best candidate's score -2.50 is below completion.min_score -2.00"),  # retrieved, hidden
        ([-1.5], -3.344, None),
    ],
)
def test_why_hidden_when_the_model_wrote_nothing(scores, unwritten, reason):
    assert why_hidden([C(s) for s in scores], -2.0, unwritten) == reason
    assert why_hidden([C(s) for s in scores], None, unwritten) is None
