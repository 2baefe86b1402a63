"""The score a completion candidate is ranked and gated by: the log-probability that it is useful (pure).

The model's scoring pass alone ranks badly: a short or repetitive guess is easy to predict, so it outscores a
longer line copied from context even when that line is right. What is known about a candidate besides the model's
log-probabilities (where it came from, how much context its match shared, whether its text already occurs in the
document, whether it adds syntax errors to the code around the cursor or removes some) goes into a logistic model
with the scoring pass's numbers, fitted on the held-out calibration split (bench/calibrate_score.py, never the test
split). Its output is log P(useful) <= 0, so `completion.min_score` is a probability threshold on a log scale for
every source of candidates alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ATTESTED_CHARS = 4  # a shorter text occurs everywhere by chance


@dataclass(frozen=True)
class Evidence:
    confidence: float  # mean log-probability of the middle and its end token (masked scoring pass)
    agreement: float  # mean log-probability of the pinned suffix tail after it (0.0: none)
    tokens: int  # length of the middle in tokens
    retrieved: bool = False  # found in context (dcopilot.engine.tasks.retrieve), not denoised
    context: int = 0  # retrieved: equal lines before its match and before the cursor
    typed: int = 0  # retrieved: characters of the cursor's line its match started with
    attested: bool = False  # its text occurs in the document or a snippet
    errors_added: int = 0  # syntax errors it adds to the text around the cursor (< 0: repairs; 0: no grammar)
    shared: int = 0  # retrieved: characters right before its match equal to those right before the cursor
    symbols_only: bool = False  # no letter or digit in it (a lone bracket or operator: rarely what was meant)
    after: int = 0  # retrieved: equal lines after its match and after the cursor's line
    renamed: int = 0  # retrieved: words renamed between its match's context and the cursor's (0: an exact repeat)


FEATURES = (
    "confidence",
    "agreement",
    "log_tokens",
    "retrieved",
    "context",
    "log_typed",
    "attested",
    "breaks",
    "repairs",
    "log_shared",
    "symbols_only",
    "after",
    "renamed",
)


@dataclass(frozen=True)
class ScoreFit:
    """A fitted score: a weight per feature (FEATURES order) and a bias. It belongs to one checkpoint, whose
    log-probabilities have a scale of their own: bench/calibrate_score.py fits it on the calibration split and
    writes it beside the weights (dcopilot.engine.tasks.score_fit)."""

    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ValueError(
                f"a score fit needs {len(FEATURES)} weights ({', '.join(FEATURES)}), not {len(self.weights)}"
            )

    def score(self, e: Evidence) -> float:
        return score(e, self.weights, self.bias)

    def ceiling(self) -> float:
        return ceiling(self.weights, self.bias)

    def to_json(self) -> dict[str, object]:
        return {"weights": {name: self.weights[i] for i, name in enumerate(FEATURES)}, "bias": self.bias}

    @classmethod
    def from_json(cls, d: object) -> ScoreFit:
        """The fit `to_json` wrote; ValueError saying what is wrong otherwise (a fit of other features included:
        it must be refit, not guessed at)."""
        if not isinstance(d, dict) or not isinstance(d.get("weights"), dict):
            raise ValueError('expected {"weights": {feature: weight, ...}, "bias": number}')
        weights, bias = d["weights"], d.get("bias")
        if set(weights) != set(FEATURES):
            missing, extra = sorted(set(FEATURES) - set(weights)), sorted(set(weights) - set(FEATURES))
            raise ValueError(f"fitted for other features (missing {missing}, unknown {extra}): refit it")
        values = [weights[name] for name in FEATURES]
        if not all(_is_number(v) for v in (*values, bias)):
            raise ValueError("weights and bias must be finite numbers")
        return cls(tuple(float(v) for v in values), float(bias))  # type: ignore[arg-type]


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def features(e: Evidence) -> tuple[float, ...]:
    return (
        e.confidence,
        e.agreement,
        math.log1p(e.tokens),
        float(e.retrieved),
        float(min(e.context, 3)),
        math.log1p(e.typed),
        float(e.attested),
        float(e.errors_added > 0),
        float(e.errors_added < 0),
        math.log1p(e.shared),
        float(e.symbols_only),
        float(min(e.after, 3)),
        float(e.renamed > 0),
    )


# What the evidence of a candidate the model wrote itself (not retrieved) can be, per feature: (lowest, highest).
# Log-probabilities are at most 0, a text has at least 1 token, the retrieval facts are all 0.
WRITTEN_RANGES = {
    "confidence": (-math.inf, 0.0),
    "agreement": (-math.inf, 0.0),
    "log_tokens": (math.log(2), math.inf),
    "retrieved": (0.0, 0.0),
    "context": (0.0, 0.0),
    "log_typed": (0.0, 0.0),
    "attested": (0.0, 1.0),
    "breaks": (0.0, 1.0),
    "repairs": (0.0, 1.0),
    "log_shared": (0.0, 0.0),
    "symbols_only": (0.0, 1.0),
    "after": (0.0, 0.0),
    "renamed": (0.0, 0.0),
}


def ceiling(weights: Sequence[float], bias: float) -> float:
    """The highest score a candidate the model wrote itself can get, whatever it writes: log P(useful) at best
    (0.0 when a weight lets it grow without bound). Below a gate above this, no such candidate is ever shown."""
    z = bias
    for name, w in zip(FEATURES, weights, strict=True):
        low, high = WRITTEN_RANGES[name]
        best = high if w > 0 else low
        if w and math.isinf(best):
            return 0.0
        z += w * best if w else 0.0
    return log_sigmoid(z)


def log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z)) if z > -30 else z


def score(e: Evidence, weights: Sequence[float], bias: float) -> float:
    """log P(useful | evidence) under the fitted logistic model (<= 0; higher is better)."""
    return log_sigmoid(bias + sum(w * x for w, x in zip(weights, features(e), strict=True)))


def attested(text: str, *sources: str) -> bool:
    """The text (stripped) is long enough to mean something and occurs in one of the sources."""
    t = text.strip()
    return len(t) >= ATTESTED_CHARS and any(t in s for s in sources)


def symbols_only(text: str) -> bool:
    return not any(c.isalnum() for c in text)


def fit(
    rows: Sequence[tuple[Sequence[float], bool]], l2: float = 1e-3, iterations: int = 50
) -> tuple[tuple[float, ...], float]:
    """(weights, bias) of a logistic model of `rows` (features, label) by Newton's method with a small L2 penalty
    (keeps the weights finite when a feature separates the labels)."""
    if not rows:
        raise ValueError("nothing to fit")
    n = len(rows[0][0])
    w = [0.0] * (n + 1)  # bias last
    for _ in range(iterations):
        grad = [0.0] * (n + 1)
        hess = [[0.0] * (n + 1) for _ in range(n + 1)]
        for x, y in rows:
            v = [*x, 1.0]
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, sum(a * b for a, b in zip(w, v, strict=True))))))
            g = p - float(y)
            h = p * (1.0 - p)
            for i in range(n + 1):
                grad[i] += g * v[i]
                for j in range(n + 1):
                    hess[i][j] += h * v[i] * v[j]
        for i in range(n):  # the bias is not penalised
            grad[i] += l2 * len(rows) * w[i]
            hess[i][i] += l2 * len(rows)
        step = _solve(hess, grad)
        w = [a - s for a, s in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-8:
            break
    return tuple(w[:n]), w[n]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """x with a x = b (Gaussian elimination with partial pivoting; a is small and positive definite here)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] if abs(m[i][i]) >= 1e-12 else 0.0 for i in range(n)]
