"""The calibrated candidate score (dcopilot.engine.tasks.calibrate): features, score, the fit, as tables."""

import math

import pytest
from dcopilot.engine.tasks.calibrate import (
    FEATURES,
    Evidence,
    ScoreFit,
    _solve,
    attested,
    ceiling,
    features,
    fit,
    log_sigmoid,
    score,
    symbols_only,
)

SWITCH = "below -30 the two formulas agree to 1e-13 (log1p(e^-30)); the switch only keeps exp(-z) from overflowing"
STRICT_STEP = "the step has one entry per weight by construction: strict or not, zip pairs them all"
PIVOT_EXACTLY = "a pivot of exactly 1e-12 in absolute value: the two tests differ only there"
EQUIVALENT_MUTANTS = [
    (
        "ceiling",
        "best = high if w >= 0 else low",
        "at a weight of 0 either bound adds nothing: the weight times it is skipped, infinite or not",
    ),
    ("log_sigmoid", "return -math.log1p(math.exp(-z)) if z >= -30 else z", SWITCH),
    ("log_sigmoid", "return -math.log1p(math.exp(-z)) if z > -31 else z", SWITCH),
    (
        "fit",
        "rows: Sequence[tuple[Sequence[float], bool]], l2: float = 1e-3, iterations: int = 51",
        "with the L2 penalty Newton's method converges in a handful of steps (the step falls below 1e-8), so a "
        "51st step is never taken",
    ),
    (
        "fit",
        "p = 1.0 / (1.0 + math.exp(-max(-31.0, min(30.0, sum(a * b for a, b in zip(w, v, strict=True))))))",
        "the logit is clamped only to keep exp finite: beyond 30 in size p is within 1e-13 of 0 or 1 either way",
    ),
    (
        "fit",
        "p = 1.0 / (1.0 + math.exp(-max(-30.0, min(31.0, sum(a * b for a, b in zip(w, v, strict=True))))))",
        "the logit is clamped only to keep exp finite: beyond 30 in size p is within 1e-13 of 0 or 1 either way",
    ),
    ("fit", "w = [a - s for a, s in zip(w, step, strict=None)]", STRICT_STEP),
    ("fit", "w = [a - s for a, s in zip(w, step, )]", STRICT_STEP),
    ("fit", "w = [a - s for a, s in zip(w, step, strict=False)]", STRICT_STEP),
    ("fit", "if max(abs(s) for s in step) <= 1e-8:", "a largest step of exactly 1e-8: one more step changes < 1e-16"),
    ("_solve", "if abs(m[c][c]) <= 1e-12:", PIVOT_EXACTLY),
    ("_solve", "return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]", PIVOT_EXACTLY),
    (
        "_solve",
        "for k in range(n + 1):",
        "left of column c the pivot row holds zeros (eliminated, or below 1e-12 in a skipped column): "
        "subtracting multiples of them changes nothing",
    ),
]


def test_features_follow_their_names():
    e = Evidence(
        confidence=-1.5,
        agreement=-0.5,
        tokens=3,
        retrieved=True,
        context=7,
        typed=4,
        attested=True,
        errors_added=2,
        shared=19,
        symbols_only=True,
        after=5,
        renamed=2,
    )
    got = dict(zip(FEATURES, features(e), strict=True))
    assert got == {
        "confidence": -1.5,
        "agreement": -0.5,
        "log_tokens": pytest.approx(math.log(4)),
        "retrieved": 1.0,
        "context": 3.0,  # capped: more equal lines than retrieval counts add nothing
        "log_typed": pytest.approx(math.log(5)),
        "attested": 1.0,
        "breaks": 1.0,
        "repairs": 0.0,
        "log_shared": pytest.approx(math.log(20)),
        "symbols_only": 1.0,
        "after": 3.0,  # capped like context
        "renamed": 1.0,  # whether, not how many: one rename or two is the same repeat under other names
    }


@pytest.mark.parametrize(
    "errors_added,breaks,repairs",
    [(0, 0.0, 0.0), (1, 1.0, 0.0), (5, 1.0, 0.0), (-1, 0.0, 1.0), (-3, 0.0, 1.0)],  # 0 too: no grammar
)
def test_syntax_features_say_only_which_way_the_errors_went(errors_added, breaks, repairs):
    got = dict(zip(FEATURES, features(Evidence(-1.0, 0.0, 2, errors_added=errors_added)), strict=True))
    assert (got["breaks"], got["repairs"]) == (breaks, repairs)


@pytest.mark.parametrize("renamed,feature", [(0, 0.0), (1, 1.0), (2, 1.0)])
def test_renamed_says_whether_any_word_was_renamed(renamed, feature):
    got = dict(zip(FEATURES, features(Evidence(-1.0, 0.0, 2, renamed=renamed)), strict=True))
    assert got["renamed"] == feature


def written(**kw) -> Evidence:
    """Evidence of a candidate the model wrote itself (no retrieval facts)."""
    return Evidence(**{"confidence": -0.5, "agreement": -1.0, "tokens": 1, **kw})


W0 = (1.0, 0.0, -0.5, 9.0, 9.0, 9.0, 0.25, -1.0, 0.5, 9.0, -2.0, 9.0, 9.0)  # retrieval weights: no matter
W1 = (1.0, 0.0, -0.5, 9.0, 9.0, 9.0, -0.25, 1.0, 0.0, 9.0, 2.0, 9.0, 9.0)


@pytest.mark.parametrize(
    "weights,best,expected_z",
    [
        # the best written text: confidence 0, 1 token, the best of each yes/no fact; retrieval facts 0
        (W0, written(confidence=0.0, attested=True, errors_added=-1), -3.0 - 0.5 * math.log(2) + 0.25 + 0.5),
        (W1, written(confidence=0.0, errors_added=1, symbols_only=True), -3.0 - 0.5 * math.log(2) + 1.0 + 2.0),
        ((0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 0.0, 0.0, 0.0, 9.0, 0.0, 9.0, 9.0), written(), -3.0),  # the bias alone
        # a weight that lets a written text's score grow without bound: no ceiling
        ((-1.0, 0.0, -0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), None, None),  # the less confident, the better
        ((1.0, -0.1, -0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), None, None),  # the worse the suffix agrees, the better
        ((1.0, 0.0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), None, None),  # the longer, the better
    ],
)
def test_ceiling_of_what_the_model_writes(weights, best, expected_z):
    top = ceiling(weights, -3.0)
    if expected_z is None:
        assert top == 0.0
        return
    assert top == pytest.approx(log_sigmoid(expected_z))
    assert score(best, weights, -3.0) == pytest.approx(top)  # reached
    for e in (written(), written(tokens=40), written(confidence=-3.0, attested=True), written(symbols_only=True)):
        assert score(e, weights, -3.0) <= top


def test_ceiling_needs_one_weight_per_feature():
    with pytest.raises(ValueError):
        ceiling((0.0,) * (len(FEATURES) - 1), 0.0)


def test_every_feature_has_a_weight():
    assert len(FEATURES) == len(features(Evidence(0.0, 0.0, 0)))
    with pytest.raises(ValueError) as e:
        ScoreFit((0.0,) * (len(FEATURES) - 1), 0.0)
    assert str(e.value) == f"a score fit needs 13 weights ({', '.join(FEATURES)}), not 12"


def test_a_fit_scores_and_bounds_as_its_weights_do():
    weights = tuple(0.1 * (i + 1) for i in range(len(FEATURES)))
    # no agreement, and longer texts score lower: a written text's score is bounded
    weights = tuple(
        {"agreement": 0.0, "log_tokens": -w}.get(name, w) for name, w in zip(FEATURES, weights, strict=True)
    )
    f = ScoreFit(weights, -4.0)
    e = Evidence(-1.5, -2.0, 7, retrieved=True, context=2, shared=9)
    assert f.score(e) == score(e, weights, -4.0)
    assert f.ceiling() == ceiling(weights, -4.0) < 0.0


def test_a_fit_round_trips_through_json_by_feature_name():
    f = ScoreFit(tuple(float(i) - 6 for i in range(len(FEATURES))), -3.5)
    d = f.to_json()
    assert list(d["weights"]) == list(FEATURES) and d["bias"] == -3.5
    assert ScoreFit.from_json(d) == f
    shuffled = {"bias": -3.5, "weights": dict(reversed(list(d["weights"].items()))), "fitted_on": "anything"}
    assert ScoreFit.from_json(shuffled) == f  # names, not order, say which weight is which; extra keys are notes
    assert ScoreFit.from_json({**d, "bias": 2}).bias == 2.0  # an integer is a number


SHAPE = 'expected {"weights": {feature: weight, ...}, "bias": number}'
NUMBERS = "weights and bias must be finite numbers"


@pytest.mark.parametrize(
    "d,why",
    [
        ([], "expected"),
        ({"bias": 0.0}, "expected"),
        ({"weights": [0.0] * 13, "bias": 0.0}, "expected"),
        ({"weights": {name: 0.0 for name in FEATURES[:-1]}, "bias": 0.0}, r"missing \['renamed'\], unknown \[\]"),
        ({"weights": {**{name: 0.0 for name in FEATURES}, "vibes": 1.0}, "bias": 0.0}, r"unknown \['vibes'\]"),
        ({"weights": {name: 0.0 for name in FEATURES}}, "finite numbers"),  # no bias
        ({"weights": {name: 0.0 for name in FEATURES}, "bias": "1"}, "finite numbers"),
        ({"weights": {name: 0.0 for name in FEATURES}, "bias": True}, "finite numbers"),
        ({"weights": {name: math.nan for name in FEATURES}, "bias": 0.0}, "finite numbers"),
        ({"weights": {name: None for name in FEATURES}, "bias": 0.0}, "finite numbers"),
    ],
)
def test_a_fit_that_is_not_one_says_why(d, why):
    with pytest.raises(ValueError, match=why) as e:
        ScoreFit.from_json(d)
    assert str(e.value) in (SHAPE, NUMBERS) or str(e.value).startswith("fitted for other features (missing [")


@pytest.mark.parametrize(
    "z,expected",
    [
        (0.0, math.log(0.5)),
        (40.0, 0.0),
        (-40.0, -40.0),
        (2.0, math.log(1 / (1 + math.exp(-2)))),
        (-1000.0, -1000.0),  # far below: no overflow, the logit itself
    ],
)
def test_log_sigmoid(z, expected):
    assert log_sigmoid(z) == pytest.approx(expected, abs=1e-12)


def test_score_is_a_log_probability_rising_with_each_positive_weight():
    base = Evidence(confidence=-2.0, agreement=0.0, tokens=5)
    weights = (1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, -1.5, 0.5, 1.0, -0.75, 0.25, 0.125)
    low, high = score(base, weights, 0.0), score(Evidence(-2.0, 0.0, 5, retrieved=True), weights, 0.0)
    assert low == pytest.approx(log_sigmoid(-2.0)) and high == pytest.approx(log_sigmoid(0.0))
    assert low < high <= 0.0
    broken, repaired = (score(Evidence(-2.0, 0.0, 5, errors_added=n), weights, 0.0) for n in (2, -2))
    assert broken == pytest.approx(log_sigmoid(-3.5)) and repaired == pytest.approx(log_sigmoid(-1.5))
    shared = score(Evidence(-2.0, 0.0, 5, shared=6), weights, 0.0)
    assert shared == pytest.approx(log_sigmoid(-2.0 + math.log(7)))
    assert score(Evidence(-2.0, 0.0, 5, symbols_only=True), weights, 0.0) == pytest.approx(log_sigmoid(-2.75))
    assert score(Evidence(-2.0, 0.0, 5, after=2), weights, 0.0) == pytest.approx(log_sigmoid(-1.5))
    assert score(Evidence(-2.0, 0.0, 5, renamed=2), weights, 0.0) == pytest.approx(log_sigmoid(-1.875))
    with pytest.raises(ValueError):
        score(base, (1.0,), 0.0)  # one weight per feature


@pytest.mark.parametrize(
    "text,expected",
    [
        ("):", True),
        ("  }", True),
        ("", True),
        ("x)", False),
        ("0]", False),
        ("é", False),  # letters of any script
    ],
)
def test_symbols_only(text, expected):
    assert symbols_only(text) is expected


@pytest.mark.parametrize(
    "text,sources,expected",
    [
        ("compute(a)", ["x = compute(a)\n"], True),
        ("  compute(a)\n", ["x = compute(a)"], True),  # stripped
        ("abc", ["abc"], False),  # too short to mean anything
        ("abcd", ["x abcd"], True),  # four characters are enough
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
    with pytest.raises(ValueError, match=r"^nothing to fit$"):
        fit([])


ROWS = [((0.0,), False), ((1.0,), False), ((1.0,), True), ((2.0,), True), ((3.0,), True), ((0.5,), True)]


def test_one_fit_step_is_a_newton_step_from_zero():
    # from w = 0 every p is 1/2: gradient (sum (p - y) x, sum (p - y)), Hessian sum p (1 - p) [x 1][x 1]^T plus the
    # penalty l2 * n on the weight only; the step solved by Cramer's rule
    l2, n = 0.1, len(ROWS)
    g = [sum((0.5 - y) * x[0] for x, y in ROWS), sum(0.5 - y for _, y in ROWS)]
    h = [
        [sum(0.25 * x[0] ** 2 for x, _ in ROWS) + l2 * n, sum(0.25 * x[0] for x, _ in ROWS)],
        [sum(0.25 * x[0] for x, _ in ROWS), 0.25 * n],
    ]
    det = h[0][0] * h[1][1] - h[0][1] * h[1][0]
    step = ((g[0] * h[1][1] - h[0][1] * g[1]) / det, (h[0][0] * g[1] - h[1][0] * g[0]) / det)
    (w,), bias = fit(ROWS, l2=l2, iterations=1)
    assert (w, bias) == (pytest.approx(-step[0], abs=1e-12), pytest.approx(-step[1], abs=1e-12))


@pytest.mark.parametrize("l2", [0.0, 0.05, 0.5])
def test_the_fit_is_the_minimum_of_the_penalised_log_loss(l2):
    # at the minimum the gradient vanishes: sum (p - y) x + l2 * n * w for the weight, sum (p - y) for the bias
    (w,), bias = fit(ROWS, l2=l2)
    p = [1 / (1 + math.exp(-(w * x[0] + bias))) for x, _ in ROWS]
    assert sum((pi - y) * x[0] for pi, (x, y) in zip(p, ROWS, strict=True)) + l2 * len(ROWS) * w == pytest.approx(
        0.0, abs=1e-9
    )
    assert sum(pi - y for pi, (_, y) in zip(p, ROWS, strict=True)) == pytest.approx(0.0, abs=1e-9)
    assert w > 0.0  # more x, more often true


def test_a_feature_that_is_always_zero_gets_no_weight_even_without_a_penalty():
    rows = [((0.0, x), y) for (x,), y in ROWS]
    (w0, w1), bias = fit(rows, l2=0.0)
    (w,), b = fit(ROWS, l2=0.0)
    assert (w0, w1, bias) == (0.0, pytest.approx(w, abs=1e-9), pytest.approx(b, abs=1e-9))


def test_rows_with_different_feature_counts_are_refused():
    with pytest.raises(ValueError):
        fit([((1.0,), True), ((0.0, 1.0), False)])


@pytest.mark.parametrize(
    "a,b,x",
    [
        ([[2.0, 0.0], [0.0, 4.0]], [2.0, 2.0], [1.0, 0.5]),
        ([[4.0, 1.0], [1.0, 3.0]], [1.0, 2.0], [1 / 11, 7 / 11]),
        # zeros on the diagonal: rows are swapped to the largest pivot
        ([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [1.0, 2.0, 3.0], [2.0, 1.0, 3.0]),
        ([[1e-3, 1.0], [1.0, 1.0]], [1.0, 2.0], [1 / 0.999, 1 - 1e-3 / 0.999]),
        # a singular direction (a feature never seen) gets 0; the rest is still solved
        ([[2.0, 0.0], [0.0, 0.0]], [4.0, 0.0], [2.0, 0.0]),
        ([[0.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0]], [0.0, 3.0, 3.0], [0.0, 1.0, 1.0]),
    ],
)
def test_solve(a, b, x):
    assert _solve(a, b) == pytest.approx(x, abs=1e-12)
