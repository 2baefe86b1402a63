"""Between the handlers and the service: typed-through cache, debounce, newest-request-wins, speculation.

- Cache: an LRU of suggestions keyed by the text around the cursor (a window each side). A request whose
  prefix is a cached prefix plus the first characters of a cached suggestion (the user typed into the ghost
  text) is answered with the rest of that suggestion at once: no flicker, no model call.
- Debounce adapts to typing speed: a moving average of the interval between edits, clamped to
  [base, 4 x base], so a fast typist's intermediate keystrokes never reach the model. Invoked (manual)
  requests are not debounced.
- Newest wins per document: a new request cancels the task of the previous one (pygls answers it with
  RequestCancelled, -32800) and task cancellation reaches the worker, which stops between denoising steps.
  The number of requests in flight across documents is bounded; the oldest is cancelled first.
- Speculation (optional): after a suggestion is shown, compute the one that follows its acceptance in the
  background; a real request for exactly that context joins it instead of starting over.
- Preparation: what a request needs only when the model runs (the workspace snippets, ranked over every open
  document) is added by a `prepare` callback after the debounce, so a superseded or cache-answered keystroke
  never pays for it.

Pure asyncio; knows nothing about LSP positions or pygls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from dcopilot.lsp.service import Cancelled, CompletionRequest, CompletionService, Suggestion

log = logging.getLogger("dcopilot.lsp")

CACHE_WINDOW = 4096  # chars each side of the cursor that identify a context (the model sees about this much)
MAX_TYPED = 256  # longest typed-through run looked for
RECENT_PER_DOC = 8  # cache entries per document tried for typed-through
TYPING_GAP = 2.0  # seconds; a pause longer than this is not part of the typing rhythm

Prepare = Callable[[CompletionRequest], CompletionRequest]  # the request as the model should get it


@dataclass(frozen=True, slots=True)
class Outcome:
    suggestions: list[Suggestion]
    cached: bool
    debounce: float  # seconds waited before calling the service
    model: float  # seconds inside the service (queue + denoising)
    source: str = "model"  # where the suggestions came from, for the debug log: model, cache, typed-through, ...


@dataclass(frozen=True, slots=True)
class _Entry:
    before: str
    after: str
    items: tuple[tuple[str, int, int, float], ...]  # (text, lead = offset - start, tail = end - offset, score)
    candidates: int = 1  # how many the request asked for: an invoked request wanting more is not served from it


def windows(req: CompletionRequest) -> tuple[str, str]:
    return req.text[max(0, req.offset - CACHE_WINDOW) : req.offset], req.text[req.offset : req.offset + CACHE_WINDOW]


def typed_through(entry: _Entry, before: str, after: str, offset: int) -> list[Suggestion]:
    """The rest of each cached insertion that the user has typed the beginning of (pure; table-tested)."""
    if after != entry.after:
        return []
    found = []
    for text, lead, tail, score in entry.items:
        if lead != 0:
            continue
        for k in range(1, min(len(text), MAX_TYPED + 1)):
            # cheap filters first: the typed run, then a short anchor, then the whole window
            if (
                before.endswith(text[:k])
                and before[: len(before) - k].endswith(entry.before[-64:])
                and (entry.before + text[:k])[-CACHE_WINDOW:] == before
            ):
                found.append(Suggestion(text=text[k:], start=offset, end=offset + tail, score=score))
                break
    return found


class Scheduler:
    def __init__(self, service: CompletionService, *, cache_entries: int = 256, max_in_flight: int = 16):
        self.service = service
        self.cache_entries = cache_entries
        self.max_in_flight = max_in_flight
        self._cache: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._recent: dict[str, deque[tuple[str, str, str]]] = {}
        self._tasks: OrderedDict[str, asyncio.Task] = OrderedDict()  # key -> task of its newest request
        self._speculative: dict[str, tuple[tuple[str, str, str], asyncio.Task]] = {}
        self._last_edit: dict[str, float] = {}
        self._interval: dict[str, float] = {}

    # -- typing rhythm -----------------------------------------------------------------------------------------

    def typed(self, uri: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        last = self._last_edit.get(uri)
        self._last_edit[uri] = now
        if last is not None and now - last < TYPING_GAP:
            avg = self._interval.get(uri)
            self._interval[uri] = now - last if avg is None else 0.7 * avg + 0.3 * (now - last)

    def delay(self, uri: str, base: float) -> float:
        """Debounce for the next request on `uri`: the typing interval, clamped to [base, 4 x base]."""
        return min(max(self._interval.get(uri, base), base), 4 * base)

    # -- cache -------------------------------------------------------------------------------------------------

    def lookup(self, req: CompletionRequest) -> list[Suggestion] | None:
        return self._lookup(req)[0]

    def _lookup(self, req: CompletionRequest) -> tuple[list[Suggestion] | None, str]:
        """(suggestions, "cache" or "typed-through cache"), or (None, "") on a miss."""
        before, after = windows(req)
        entry = self._cache.get((req.uri, before, after))
        if entry is not None and entry.candidates >= req.candidates:
            self._cache.move_to_end((req.uri, before, after))
            return [
                Suggestion(text=t, start=req.offset - lead, end=req.offset + tail, score=s)
                for t, lead, tail, s in entry.items
            ], "cache"
        for key in reversed(self._recent.get(req.uri, ())):
            entry = self._cache.get(key)
            if entry is not None and (found := typed_through(entry, before, after, req.offset)):
                return found, "typed-through cache"
        return None, ""

    def store(self, req: CompletionRequest, suggestions: list[Suggestion]) -> None:
        if not suggestions:
            return  # an empty answer may be a model still loading: never cache it
        before, after = windows(req)
        key = (req.uri, before, after)
        items = tuple((s.text, req.offset - s.start, s.end - req.offset, s.score) for s in suggestions)
        self._cache[key] = _Entry(before, after, items, req.candidates)
        self._cache.move_to_end(key)
        recent = self._recent.setdefault(req.uri, deque(maxlen=RECENT_PER_DOC))
        if key in recent:
            recent.remove(key)
        recent.append(key)
        while len(self._cache) > self.cache_entries:
            old, _ = self._cache.popitem(last=False)
            if old in self._recent.get(old[0], ()):
                self._recent[old[0]].remove(old)
                if not self._recent[old[0]]:
                    del self._recent[old[0]]

    # -- requests ----------------------------------------------------------------------------------------------
    # The asyncio orchestration below is checked end to end by the protocol tests against a real server; mutation
    # testing (scripts/mutation.py) covers the pure parts above.
    # pragma: no mutate block

    async def complete(
        self, req: CompletionRequest, debounce: float = 0.0, tag: str = "", prepare: Prepare | None = None
    ) -> Outcome:
        """Answer `req`; raises asyncio.CancelledError when superseded (or dcopilot.lsp.service.Cancelled from the
        service). `tag` names the request in debug lines; `prepare` runs once, right before the service is asked,
        never for a request answered from the cache or a speculative run, or superseded while it waits."""
        task = asyncio.current_task()
        self._supersede(req.key, task)
        tag = tag or f"{req.uri} v{req.version}"
        phase = "before the engine ran"
        try:
            hit, where = self._lookup(req)
            if hit is not None:
                log.debug("%s served from the %s: %d suggestions, no model call", tag, where, len(hit))
                return Outcome(hit, cached=True, debounce=0.0, model=0.0, source=where)
            joined = self._joinable(req)
            if joined is not None:
                log.debug("%s joined the speculative run for this context", tag)
                phase = "while joined to a speculative run (which goes on)"
                start = time.monotonic()
                suggestions = await asyncio.shield(joined)
                return Outcome(
                    suggestions, cached=False, debounce=0.0, model=time.monotonic() - start, source="speculation"
                )
            stale = self._speculative.pop(req.key, None)
            if stale is not None:
                log.debug("%s cancels a speculative run for another context", tag)
                stale[1].cancel()  # the user went elsewhere: free the worker for this request
            if debounce > 0:
                log.debug("%s debounce %.0f ms", tag, debounce * 1000)
                phase = "during the debounce wait (the engine never ran)"
                await asyncio.sleep(debounce)
            if prepare is not None:
                req = prepare(req)
            phase = "while queued or running in the engine (told to stop at its next step)"
            start = time.monotonic()
            suggestions = await self.service.complete(req)
            model = time.monotonic() - start
            self.store(req, suggestions)
            return Outcome(suggestions, cached=False, debounce=debounce, model=model)
        except (asyncio.CancelledError, Cancelled):
            log.debug("%s superseded or cancelled %s", tag, phase)
            raise
        finally:
            if self._tasks.get(req.key) is task:
                del self._tasks[req.key]

    def speculate(self, req: CompletionRequest, prepare: Prepare | None = None) -> None:
        """Compute `req` in the background (the context after accepting a shown suggestion) into the cache;
        `prepare` as in `complete`."""
        if req.key in self._tasks or self.lookup(req) is not None:
            return  # never displace a real request; nothing to do when already cached
        before, after = windows(req)

        async def run() -> list[Suggestion]:
            suggestions = await self.service.complete(req if prepare is None else prepare(req))
            self.store(req, suggestions)
            return suggestions

        task = asyncio.ensure_future(run())
        self._speculative[req.key] = ((req.uri, before, after), task)
        task.add_done_callback(lambda t: self._speculation_done(req.key, t))

    def _speculation_done(self, key: str, task: asyncio.Task) -> None:
        if key in self._speculative and self._speculative[key][1] is task:
            del self._speculative[key]
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log "exception was never retrieved"

    def _joinable(self, req: CompletionRequest) -> asyncio.Task | None:
        pending = self._speculative.get(req.key)
        if pending is None or pending[1].done():
            return None
        before, after = windows(req)
        return pending[1] if pending[0] == (req.uri, before, after) else None

    def _supersede(self, key: str, task: asyncio.Task | None) -> None:
        previous = self._tasks.pop(key, None)
        if previous is not None and previous is not task:
            previous.cancel()
        if task is not None:
            self._tasks[key] = task
        while len(self._tasks) > self.max_in_flight:
            _, oldest = self._tasks.popitem(last=False)
            oldest.cancel()

    def forget(self, uri: str) -> None:
        """The document closed: cancel its work; its cache entries age out of the LRU."""
        task = self._tasks.pop(uri, None)
        if task is not None:
            task.cancel()
        pending = self._speculative.pop(uri, None)
        if pending is not None:
            pending[1].cancel()
        self._last_edit.pop(uri, None)
        self._interval.pop(uri, None)
        self._recent.pop(uri, None)

    def in_flight(self) -> int:
        return len(self._tasks) + len(self._speculative)
