"""Local usage metrics: counts, acceptance, latency percentiles. Kept in memory, never sent anywhere.

Latencies live in fixed-size rings (the last `window` samples), so memory stays bounded however long the
server runs; percentiles are computed on demand for `dcopilot/stats`.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

from dcopilot.lsp.protocol import Percentiles, Stats


def percentiles(samples: list[float]) -> Percentiles:
    """p50/p95/p99 (nearest rank) of seconds, reported in milliseconds."""
    if not samples:
        return Percentiles()
    ordered = sorted(samples)

    def rank(p: float) -> float:
        index = min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))
        return round(ordered[index] * 1000, 3)

    return Percentiles(count=len(ordered), p50_ms=rank(0.50), p95_ms=rank(0.95), p99_ms=rank(0.99))


class Metrics:
    def __init__(self, window: int = 1000, remembered: int = 512):
        self.counts: dict[str, int] = dict.fromkeys(
            ("requests", "cache", "cancelled", "stale", "empty", "shown", "accepted", "partial", "rejected", "chars"), 0
        )
        self.latency: deque[float] = deque(maxlen=window)
        self.overhead: deque[float] = deque(maxlen=window)
        self.model: deque[float] = deque(maxlen=window)
        # suggestion id -> insertText, so an accept without a length counts the whole suggestion and a client's
        # acceptedLength (in position-encoding units) can be converted to code points
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._remembered = remembered

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def answered(self, *, total: float, debounce: float, model: float, cached: bool, empty: bool) -> None:
        self.counts["requests"] += 1
        self.counts["cache"] += cached
        self.counts["empty"] += empty
        self.latency.append(total)
        self.overhead.append(max(0.0, total - debounce - model))
        if model:
            self.model.append(model)

    def offered(self, suggestion_id: str, text: str) -> None:
        self._texts[suggestion_id] = text
        while len(self._texts) > self._remembered:
            self._texts.popitem(last=False)

    def text(self, suggestion_id: str) -> str | None:
        return self._texts.get(suggestion_id)

    def accepted(self, suggestion_id: str, length: int | None) -> None:
        """`length`: code points of the suggestion taken (None = all of it)."""
        text = self._texts.get(suggestion_id)
        full = None if text is None else len(text)
        taken = length if length is not None else (full or 0)
        partial = length is not None and full is not None and length < full
        self.counts["partial" if partial else "accepted"] += 1
        self.counts["chars"] += max(0, taken)

    def snapshot(self, engine_runs: int = 0, engine_cancelled: int = 0) -> Stats:
        c = self.counts
        taken = c["accepted"] + c["partial"]
        return Stats(
            requests=c["requests"],
            answered_from_cache=c["cache"],
            cancelled=c["cancelled"],
            stale=c["stale"],
            empty=c["empty"],
            shown=c["shown"],
            accepted=c["accepted"],
            partially_accepted=c["partial"],
            rejected=c["rejected"],
            accepted_chars=c["chars"],
            acceptance_rate=round(taken / c["shown"], 4) if c["shown"] else None,
            cache_hit_rate=round(c["cache"] / c["requests"], 4) if c["requests"] else None,
            latency=percentiles(list(self.latency)),
            overhead=percentiles(list(self.overhead)),
            model=percentiles(list(self.model)),
            engine_runs=engine_runs,
            engine_cancelled=engine_cancelled,
        )
