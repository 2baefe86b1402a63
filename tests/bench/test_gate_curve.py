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


@pytest.mark.parametrize(
    "useful_rate, min_shown, expected",
    [
        (0.4, 1, -100.0),  # every threshold reaches 2 of 5: the lowest shows most
        (0.5, 1, -2.0),  # -100 has 2 of 5; -2 is the lowest with half
        (0.6, 1, -0.5),  # only -0.5 (1 of 1) reaches it
        (0.6, 2, -2.0),  # -0.5 shows too few; none reaches 0.6, so the best rate (0.5), the lower of -2 and -1
        (1.0, 1, -0.5),
    ],
)
def test_choose_the_lowest_threshold_with_enough_useful(useful_rate, min_shown, expected):
    points = curve(RECORDS, [-100.0, -2.0, -1.0, -0.5])
    assert choose(points, useful_rate=useful_rate, min_shown=min_shown).threshold == expected
