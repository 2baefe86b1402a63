"""Per-case scores and the per-language, per-kind table of the quality benchmark.

A suggestion is *shown* when it has visible text. Per case: exact match and edit similarity (the metrics of
`dcopilot eval`, copilot/evaluate.py), useful = shown and ES >= 0.7, noise = shown and ES < 0.3. Per group:
- es, em: means over all cases (a case with nothing shown scores ES 0 against a non-empty truth);
- shown: shown / cases;
- useful, noise: useful / shown and noise / shown (what a user who sees a suggestion gets);
- useful_all: useful / cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcopilot.copilot.evaluate import Case as EvalCase
from dcopilot.copilot.evaluate import score_case

USEFUL_ES = 0.7
NOISE_ES = 0.3


@dataclass(frozen=True)
class Scored:
    case_id: str
    language: str
    kind: str
    shown: bool
    exact: bool
    es: float
    seconds: float = 0.0


def score(doc: str, cursor: int, target: str, text: str | None, replace: int = 0) -> tuple[bool, bool, float]:
    """(shown, exact, es) of inserting `text` at `cursor`, replacing `replace` characters right of it."""
    shown = bool(text and text.strip())
    case = EvalCase(prefix=doc[:cursor], suffix=doc[cursor:], target=target)
    exact, es = score_case(case, text if shown else None, replace if shown else 0)
    return shown, exact, es


@dataclass(frozen=True)
class Row:
    n: int
    es: float
    em: float
    shown: float
    useful: float  # of shown
    noise: float  # of shown
    useful_all: float


def row(items: list[Scored]) -> Row:
    n = len(items)
    shown = [s for s in items if s.shown]
    useful = sum(s.es >= USEFUL_ES for s in shown)
    noise = sum(s.es < NOISE_ES for s in shown)
    return Row(
        n=n,
        es=sum(s.es for s in items) / n if n else 0.0,
        em=sum(s.exact for s in items) / n if n else 0.0,
        shown=len(shown) / n if n else 0.0,
        useful=useful / len(shown) if shown else 0.0,
        noise=noise / len(shown) if shown else 0.0,
        useful_all=useful / n if n else 0.0,
    )


def table(items: list[Scored]) -> dict[tuple[str, str], Row]:
    """(language, kind) -> Row, plus (language, "all") and ("all", "all")."""
    groups: dict[tuple[str, str], list[Scored]] = {}
    for s in items:
        for key in ((s.language, s.kind), (s.language, "all"), ("all", "all")):
            groups.setdefault(key, []).append(s)
    return {k: row(v) for k, v in sorted(groups.items())}
