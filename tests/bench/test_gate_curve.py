"""bench/gate_curve.py: the useful/noise/coverage curve over min_score, and the rule that picks the default."""

import pytest
from gate_curve import Point, choose, curve


def rec(score, es, shown=True):
    return {"shown": shown, "score": score if shown else None, "es": es}


RECORDS = [rec(-0.5, 0.9), rec(-0.8, 0.1), rec(-1.5, 0.8), rec(-2.0, 0.0), rec(-3.0, 0.2), rec(None, 0.0, False)]


@pytest.mark.parametrize(
    "threshold, shown, useful, noise",
    [(-100.0, 5, 2, 3), (-2.0, 4, 2, 2), (-1.0, 2, 1, 1), (-0.5, 1, 1, 0), (0.0, 0, 0, 0)],
)
def test_curve(threshold, shown, useful, noise):
    (p,) = curve(RECORDS, [threshold])
    assert (p.cases, p.shown, p.useful, p.noise) == (6, shown, useful, noise)


def test_rates():
    p = Point(-1.0, cases=10, shown=4, useful=1, noise=2)
    assert (p.coverage, p.useful_rate, p.noise_rate) == (0.4, 0.25, 0.5)
    assert Point(0.0, 10, 0, 0, 0).noise_rate == 0.0


def test_choose_keeps_useful_and_skips_tiny_samples():
    points = curve(RECORDS, [-100.0, -2.0, -1.0, -0.5])
    # keeping all useful (2): -100 (noise 3/5) or -2 (2/4) -> -2; -0.5 loses one
    assert choose(points, keep=1.0, min_shown=1).threshold == -2.0
    # keeping half: -0.5 has no noise at all
    assert choose(points, keep=0.5, min_shown=1).threshold == -0.5
    # but it shows a single suggestion: with a floor of 2 the next best is -2 (0.5) tied with -1 (0.5): the lower
    assert choose(points, keep=0.5, min_shown=2).threshold == -2.0
