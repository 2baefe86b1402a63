"""The real `CompletionService`: the engine's infill and edit calls, run on the model worker thread.

`EngineService` is engine-agnostic glue (worker, async bridge, errors -> empty results); `EngineBackend` is
the engine: `dcopilot.engine.runtime.loader.load_model`, `dcopilot.engine.tasks.infill.complete`,
`dcopilot.engine.tasks.edit.rewrite`. Tests give `EngineService` a deterministic backend (tests/lsp/det_backend.py)
to drive the same worker, cancellation and error paths without a model.

torch is imported on the worker thread when the model loads, never on the event loop's import path, so
the server answers `initialize` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from dcopilot.copilot.gate import gate
from dcopilot.copilot.requests import edit_request, gate_for, infill_request, load_configured_model, unfitted
from dcopilot.copilot.worker import Progress, ReadyDetails, Worker
from dcopilot.lsp.service import (
    Cancelled,
    CompletionRequest,
    EditRequest,
    EditResult,
    Status,
    Suggestion,
    TextEdit,
)

if TYPE_CHECKING:  # the engine (and torch) is imported only when the model loads
    from dcopilot.engine.runtime.prefix_cache import PrefixCache
    from dcopilot.engine.runtime.static import StaticDenoise, WarmUp

log = logging.getLogger("dcopilot.service")

Cancel = Callable[[], bool]


class Backend(Protocol):
    def load(self, progress: Progress) -> Any: ...

    def describe(self, model: Any) -> tuple[str, str]: ...

    def complete(self, model: Any, req: CompletionRequest, cancel: Cancel) -> list[Suggestion]: ...

    def edit(self, model: Any, req: EditRequest, cancel: Cancel) -> EditResult: ...


class EngineService:
    """CompletionService over one model worker thread."""

    def __init__(self, backend: Backend, max_pending: int = 8):
        self.backend = backend
        # ready_details: extra status fields once loaded (how the denoise step runs); optional for test backends
        self.worker = Worker(
            backend.load, backend.describe, max_pending=max_pending, details=getattr(backend, "ready_details", None)
        )

    def start(self, on_status: Callable[[Status], None]) -> None:
        self.worker.start(on_status)

    def status(self) -> Status:
        return self.worker.status()

    def cancel(self, request_key: str) -> None:
        self.worker.cancel(request_key)

    def close(self) -> None:
        self.worker.close()

    async def complete(self, req: CompletionRequest) -> list[Suggestion]:
        if self.worker.status().state != "ready":
            return []  # loading or failed: the status notification says why
        return await self._run(req.key, lambda model, cancel: self.backend.complete(model, req, cancel), [])

    async def edit(self, req: EditRequest) -> EditResult:
        status = self.worker.status()
        if status.state != "ready":
            return EditResult(edits=[], message=f"model not ready: {status.message}")
        return await self._run(
            req.key,
            lambda model, cancel: self.backend.edit(model, req, cancel),
            EditResult(edits=[], message="model error"),
        )

    async def _run(self, key: str, fn, on_error):
        job = self.worker.submit(key, fn)
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            # the request was cancelled: stop the engine at its next denoising step
            never_ran = job.cancel()
            log.debug(
                "cancel %s: %s",
                key,
                "dropped from the queue before it ran"
                if never_ran
                else "the engine stops at its next step"
                if not job.future.done()
                else "it had already finished",
            )
            raise
        except Cancelled:
            raise
        except Exception as exc:  # OOM, a bad checkpoint, a bug: this request gets nothing, the server lives
            log.warning("model request failed: %s: %s", type(exc).__name__, exc)
            if isinstance(on_error, EditResult):
                return EditResult(edits=[], message=f"model error: {type(exc).__name__}: {exc}")
            return on_error


class EngineBackend:
    """engine.* behind the Backend protocol, configured by dcopilot.copilot.config.Config."""

    def __init__(self, config, prefix_cache_bytes: int = 512 << 20, compile_backend=None):
        self.config = config
        self.prefix_cache_bytes = prefix_cache_bytes
        self.compile_backend = compile_backend  # torch.compile backend instead of inductor (tests count graphs)
        self.prefix: PrefixCache | None = None  # consecutive keystrokes re-encode only the prompt tail
        self.denoise: StaticDenoise | None = None  # when model.compile allows it; None = eager model.denoise
        self.warmup: WarmUp | None = None  # what compiling the step before ready did

    def load(self, progress: Progress):
        progress(0.05, "importing the engine")
        m = self.config.model
        progress(0.2, f"loading {m.path or 'the embedded model'}")
        model = load_configured_model(self.config)
        from dcopilot.engine.runtime.prefix_cache import PrefixCache
        from dcopilot.engine.tasks import score_fit

        if not score_fit.of_model(model).own:
            log.warning(unfitted(model.path))

        self.prefix = PrefixCache(model, max_bytes=self.prefix_cache_bytes)
        self.denoise = static_denoise(model, m.compile, backend=self.compile_backend)
        if self.denoise is None:
            progress(1.0, "model loaded")
            return model
        progress(0.6, "model loaded; compiling the denoise step")
        self.warmup = warm_up_step(model, self.denoise, self.config, progress)
        w = self.warmup
        if w.failed:
            log.warning("compiling the denoise step failed; running eager: %s", w.failed)
            progress(1.0, f"denoise step: compile failed, running eager ({w.failed})")
        else:
            if w.stopped:
                log.warning(
                    "warming up the denoise step stopped early (%s); other shapes compile on first use", w.stopped
                )
            log.info("denoise step compiled for %d shapes in %.1f s", w.graphs, w.seconds)
            progress(1.0, f"denoise step compiled for {w.graphs} shapes in {w.seconds:.1f} s")
        return model

    def ready_details(self, model) -> ReadyDetails:
        """The ready status: how the denoise step runs and what compiling it cost."""
        w = self.warmup
        if self.denoise is None or w is None:
            return ReadyDetails(step="eager")
        if w.failed or self.denoise.failed:
            why = w.failed or self.denoise.why_failed
            return ReadyDetails(
                message=f"model ready; denoise step eager (compile failed: {why})",
                step="eager",
                step_compile_seconds=round(w.seconds, 1),
            )
        return ReadyDetails(
            message=f"model ready; denoise step compiled for {w.graphs} shapes in {w.seconds:.1f} s",
            step="compiled",
            step_compile_seconds=round(w.seconds, 1),
            step_graphs=w.graphs,
        )

    def describe(self, model) -> tuple[str, str]:
        device = ""
        with contextlib.suppress(Exception):
            device = str(next(model.parameters()).device)
        return str(getattr(model, "path", "")), device

    def complete(self, model, req: CompletionRequest, cancel: Cancel) -> list[Suggestion]:
        from dcopilot.engine.tasks.infill import run_infill

        min_score = gate_for(model, req.min_score)
        infill = infill_request(
            self.config,
            text=req.text,
            cursor=req.offset,
            language=req.language_id,
            path=req.path,
            max_tokens=req.max_tokens,
            multiline=req.multiline,
            hypotheses=req.hypotheses,
            max_candidates=req.candidates,
            snippets=req.snippets,
            min_score=min_score,
        )
        assert self.prefix is not None, "complete() before load()"
        with _out_of_memory_as_error():
            result = run_infill(model, infill, cancel=cancel, encoder=self.prefix.encode, denoise=self.denoise)
        kept = gate(result.candidates, min_score)[: req.candidates]
        out = [Suggestion(text=x.text, start=x.start, end=x.end, score=x.score) for x in kept]
        # Counts and reject reasons only: candidate text is document-like and stays out of the log.
        rejected = ", ".join(f"{n} {why}" for why, n in sorted(result.rejected.items())) or "none"
        log.debug(
            "infill for %s: %.0f ms, %d steps, reused %d of %d prompt tokens, %d snippets, %d hypotheses, "
            "%d retrieved, rejected: %s; %d distinct -> %d returned",
            req.uri,
            result.seconds * 1000,
            result.steps,
            self.prefix.stats.last_reused,
            result.prompt_tokens,
            len(infill.snippets),
            len(result.canvases),
            result.retrieved,
            rejected,
            len(result.candidates),
            len(out),
        )
        return out

    def edit(self, model, req: EditRequest, cancel: Cancel) -> EditResult:
        from dcopilot.engine.tasks.edit import EditTooLong, rewrite

        if req.start >= req.end:
            return EditResult(edits=[], message="empty selection")
        engine_req = edit_request(
            self.config,
            text=req.text,
            start=req.start,
            end=req.end,
            instruction=req.instruction,
            language=req.language_id,
            path=req.path,
        )
        assert self.prefix is not None, "edit() before load()"
        try:
            with _out_of_memory_as_error():
                result = rewrite(model, engine_req, cancel=cancel, encoder=self.prefix.encode, denoise=self.denoise)
        except EditTooLong as exc:
            return EditResult(edits=[], message=str(exc))
        edits = [TextEdit(start=e.start, end=e.end, new_text=e.text) for e in result.edits]
        # Counts and reasons only: the draws' text is document-like and stays out of the log.
        log.debug(
            "edit for %s: %.0f ms, %s, draws dropped: %s; score %s%s",
            req.uri,
            result.seconds * 1000,
            f"exact {result.exact}, no model" if result.exact else f"{result.canvases} canvases",
            ", ".join(str(sum(d.dropped is not None for d in chunk)) for chunk in result.draws) or "none",
            "-" if result.score is None else f"{result.score:.2f}",
            f"; {result.refused}" if result.refused else "",
        )
        if edits:
            return EditResult(edits=edits, score=result.score)
        why = result.refused or "the model kept the selection as it is"
        return EditResult(edits=[], message=why, score=result.score)


def static_denoise(model, setting: str, backend=None):
    """The compiled static-shape step (engine/runtime/static.py) when `model.compile` allows it on the model's device:
    auto means CUDA only (on CPU compiling costs minutes and gains little); None means eager model.denoise."""
    device = next(model.parameters()).device
    if setting == "off" or (setting == "auto" and device.type != "cuda"):
        return None
    from dcopilot.engine.runtime.static import StaticDenoise

    log.info("denoise step: torch.compile with static shapes on %s", device)
    return StaticDenoise(model, backend=backend)


def warm_up_step(model, denoise, config, progress: Progress):
    """Compile the step for every shape completions with `config` use (dcopilot.engine.tasks.infill.step_shapes), before
    ready, reporting progress from 0.6 to 1.0. The compile failure warning is logged once by the caller."""
    import time
    import warnings

    from dcopilot.engine.runtime.static import warm_up
    from dcopilot.engine.tasks.infill import step_shapes

    # The request every completion starts from, so the shapes are those the server's requests will have.
    shapes, longest = step_shapes(model, infill_request(config, text="", cursor=0))
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        progress(
            0.6 + 0.4 * done / total,
            f"compiling the denoise step: {done}/{total} shapes ({time.perf_counter() - started:.0f} s)",
        )

    with warnings.catch_warnings():  # StaticDenoise's own RuntimeWarning: the caller logs the failure once
        warnings.simplefilter("ignore", RuntimeWarning)
        return warm_up(model, denoise, shapes, longest, progress=report)


class _out_of_memory_as_error:
    """CUDA OOM frees the allocator cache and surfaces as a RuntimeError: this request fails, the next may not."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and kind.__name__ == "OutOfMemoryError":
            import torch

            torch.cuda.empty_cache()
            raise RuntimeError(
                "out of GPU memory; try a smaller max_tokens, fewer hypotheses or quantize = nf4"
            ) from exc
        return False
