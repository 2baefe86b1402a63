"""The calibrated candidate score (dcopilot.engine.tasks.calibrate): features, score, the fit, as tables."""

import math

import pytest
from dcopilot.engine.tasks.calibrate import FEATURES, Evidence, attested, features, fit, log_sigmoid, score


def test_features_follow_their_names():
    e = Evidence(confidence=-1.5, agreement=-0.5, tokens=3, retrieved=True, context=7, typed=4, attested=True)
    got = dict(zip(FEATURES, features(e), strict=True))
    assert got == {
        "confidence": -1.5,
        "agreement": -0.5,
        "log_tokens": pytest.approx(math.log(4)),
        "retrieved": 1.0,
        "context": 3.0,  # capped: more equal lines than retrieval counts add nothing
        "log_typed": pytest.approx(math.log(5)),
        "attested": 1.0,
    }


@pytest.mark.parametrize(
    "z,expected", [(0.0, math.log(0.5)), (40.0, 0.0), (-40.0, -40.0), (2.0, math.log(1 / (1 + math.exp(-2))))]
)
def test_log_sigmoid(z, expected):
    assert log_sigmoid(z) == pytest.approx(expected, abs=1e-12)


def test_score_is_a_log_probability_rising_with_each_positive_weight():
    base = Evidence(confidence=-2.0, agreement=0.0, tokens=5)
    weights = (1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0)
    low, high = score(base, weights, 0.0), score(Evidence(-2.0, 0.0, 5, retrieved=True), weights, 0.0)
    assert low == pytest.approx(log_sigmoid(-2.0)) and high == pytest.approx(log_sigmoid(0.0))
    assert low < high <= 0.0
    with pytest.raises(ValueError):
        score(base, (1.0,), 0.0)  # one weight per feature


@pytest.mark.parametrize(
    "text,sources,expected",
    [
        ("compute(a)", ["x = compute(a)\n"], True),
        ("  compute(a)\n", ["x = compute(a)"], True),  # stripped
        ("abc", ["abc"], False),  # too short to mean anything
        ("compute(b)", ["x = compute(a)", "y"], False),
        ("compute(b)", ["x", "compute(b)"], True),  # any source
    ],
)
def test_attested(text, sources, expected):
    assert attested(text, *sources) is expected


def test_fit_recovers_the_direction_of_a_noisy_logistic_rule():
    # label = x0 > x1, with some rows flipped: the fit must weigh x0 up, x1 down, and predict the majority
    rows = []
    for i in range(40):
        a, b = (i % 7) / 7, (i % 5) / 5
        label = a > b if i % 9 else not a > b
        rows.append(((a, b), label))
    w, bias = fit(rows)
    assert w[0] > 1.0 and w[1] < -1.0
    correct = sum((bias + w[0] * x[0] + w[1] * x[1] > 0) == y for x, y in rows)
    assert correct >= 32


def test_fit_stays_finite_on_separable_rows_and_refuses_none():
    w, bias = fit([((0.0,), False), ((1.0,), True)])
    assert all(math.isfinite(v) for v in (*w, bias)) and w[0] > 0
    with pytest.raises(ValueError):
        fit([])
