"""One thread owns the model: it loads it, then runs jobs one at a time from a bounded queue.

The event loop never waits on the model. It submits a job (a function of the model and a cancel check) and
awaits the job's future. Cancellation is cooperative and cheap: a pending job is dropped from the queue at
once, a running one sees `cancel()` turn true at its next denoising step (dcopilot.engine.runtime.sampler.sample raises
Cancelled, engine/runtime/cancel.py: the one cancellation type of every layer) and its future fails with it.

Per key (a document URI) only the newest job lives: submitting cancels the older ones. The queue holds at
most `max_pending` jobs; beyond that the oldest pending job is cancelled, so a request storm costs memory
and time proportional to the bound, not to the storm.

Loading errors (missing or corrupt weights, out of memory) become an "error" status; job errors fail only
that job. Neither stops the thread. No torch import here: the loader and jobs bring their own.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from dcopilot.lsp.service import Cancelled, Status

log = logging.getLogger("dcopilot.worker")

Progress = Callable[[float, str], None]  # (fraction 0..1, message)


@dataclass(frozen=True)
class ReadyDetails:
    """What a backend adds to the ready status (Status fields): how its denoise step runs."""

    message: str = "model ready"
    step: str = ""  # "compiled" or "eager"
    step_compile_seconds: float | None = None
    step_graphs: int = 0


@dataclass(eq=False)
class Job:
    key: str
    fn: Callable[[Any, Callable[[], bool]], Any]  # fn(model, cancel) -> result
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    queued: float = field(default_factory=time.perf_counter)

    def cancel(self) -> bool:
        """True when the job had not started (it never runs); False when running or done."""
        self.cancelled.set()
        return self.future.cancel()  # succeeds only while pending; a running job stops at its next step


class Worker:
    def __init__(
        self,
        load: Callable[[Progress], Any],
        describe: Callable[[Any], tuple[str, str]] = lambda m: ("", ""),
        max_pending: int = 8,
        details: Callable[[Any], ReadyDetails] | None = None,
    ):
        self._load = load
        self._describe = describe  # model -> (name, device) for the status line
        self._details = details  # model -> ReadyDetails for the ready state
        self.max_pending = max_pending
        self._pending: deque[Job] = deque()
        self._running: Job | None = None
        self._wake = threading.Condition()
        self._closed = False
        self._listeners: list[Callable[[Status], None]] = []
        self._status = Status(state="loading", message="not started")
        self._counts = {"runs": 0, "cancelled": 0, "seconds": 0.0}
        self._thread = threading.Thread(target=self._main, name="dcopilot-model", daemon=True)
        self.model: Any = None

    # -- event-loop side --------------------------------------------------------------------------------------

    def start(self, on_status: Callable[[Status], None]) -> None:
        self._listeners.append(on_status)
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()
        else:
            on_status(self.status())

    def status(self) -> Status:
        c = self._counts
        return _replace(
            self._status, engine_runs=c["runs"], engine_cancelled=c["cancelled"], engine_seconds=c["seconds"]
        )

    def submit(self, key: str, fn: Callable[[Any, Callable[[], bool]], Any]) -> Job:
        job = Job(key, fn)
        with self._wake:
            if self._closed:
                job.future.set_exception(Cancelled("worker closed"))
                return job
            self._cancel_locked(key)
            self._pending.append(job)
            while len(self._pending) > self.max_pending:
                dropped = self._pending.popleft()
                dropped.cancel()
                log.debug("queue full: dropped the oldest pending job (%s) before it ran", dropped.key)
            self._wake.notify()
        return job

    def cancel(self, key: str) -> None:
        with self._wake:
            self._cancel_locked(key)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            while self._pending:
                self._pending.popleft().cancel()
            if self._running is not None:
                self._running.cancel()
            self._wake.notify()

    def _cancel_locked(self, key: str) -> None:
        for job in [j for j in self._pending if j.key == key]:
            self._pending.remove(job)
            job.cancel()
        if self._running is not None and self._running.key == key:
            self._running.cancel()

    # -- model thread -----------------------------------------------------------------------------------------

    def _set_status(self, **changes) -> None:
        self._status = _replace(self._status, **changes)
        status = self.status()
        for listener in self._listeners:
            try:
                listener(status)
            except Exception:
                log.exception("status listener failed")

    def _main(self) -> None:
        self._set_status(state="loading", message="loading model", progress=0.0)
        try:
            self.model = self._load(lambda fraction, message: self._set_status(progress=fraction, message=message))
        except BaseException as exc:  # missing weights, corrupt file, OOM, even a KeyboardInterrupt-free SystemExit
            log.error("model failed to load: %s", exc)
            self._set_status(state="error", message=f"model failed to load: {exc}", progress=None)
            self.close()
            return
        name, device = self._describe(self.model)
        details = ReadyDetails()
        if self._details is not None:
            try:
                details = self._details(self.model)
            except Exception:
                log.exception("status details failed")
        self._set_status(state="ready", model=name, device=device, progress=None, **dataclasses.asdict(details))
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                job = self._pending.popleft()
                if not job.future.set_running_or_notify_cancel():
                    continue
                self._running = job
            self._run(job)
            with self._wake:
                self._running = None

    def _run(self, job: Job) -> None:
        started = time.perf_counter()
        waited = (started - job.queued) * 1000
        try:
            result = job.fn(self.model, job.cancelled.is_set)
        except BaseException as exc:
            self._counts["seconds"] += time.perf_counter() - started
            if isinstance(exc, Cancelled):
                self._counts["cancelled"] += 1
                log.debug(
                    "engine stopped mid-run for %s after %.0f ms (queued %.0f ms)",
                    job.key,
                    (time.perf_counter() - started) * 1000,
                    waited,
                )
                job.future.set_exception(exc)
            else:
                log.exception("model job failed")
                job.future.set_exception(exc)
                self._set_status(message=f"last request failed: {type(exc).__name__}: {exc}")
            return
        ms = (time.perf_counter() - started) * 1000
        self._counts["seconds"] += ms / 1000
        self._counts["runs"] += 1
        if job.cancelled.is_set():  # finished after its cancel arrived: the result is superseded anyway
            log.debug("engine run for %s finished in %.0f ms after its cancel: result dropped", job.key, ms)
            job.future.set_exception(Cancelled("cancelled"))
        else:
            log.debug("engine run for %s finished in %.0f ms (queued %.0f ms)", job.key, ms, waited)
            job.future.set_result(result)


def _replace(status: Status, **changes) -> Status:
    import msgspec

    return msgspec.structs.replace(status, **changes)
