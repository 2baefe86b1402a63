"""The contract between the LSP server and whatever produces suggestions (docs/interfaces.md).

`lsp/` calls a `CompletionService`; `dcopilot.copilot.service` implements it over the model worker thread and tests
may pass a deterministic one. Messages are msgspec structs; every offset is a code-point index of the
request's `text` (a snapshot excerpt), never an LSP position. This module imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec
from dcopilot.engine.runtime.cancel import Cancelled
from dcopilot.engine.tasks import requests as defaults
from dcopilot.lsp.protocol import Status

__all__ = [
    "Cancelled",
    "CompletionRequest",
    "CompletionService",
    "EditRequest",
    "EditResult",
    "Status",
    "Suggestion",
    "TextEdit",
]


class CompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    key: str  # cancellation key: one in-flight request per key (the document URI)
    uri: str
    path: str  # file path shown to the model (<|file|> line); "" when the URI is not a file
    language_id: str
    version: int
    text: str  # snapshot excerpt
    offset: int  # cursor
    candidates: int = 1  # distinct suggestions wanted (several on an invoked trigger)
    max_tokens: int = defaults.MAX_TOKENS
    hypotheses: int = defaults.HYPOTHESES
    multiline: defaults.Multiline = defaults.MULTILINE
    min_score: float = defaults.MIN_SCORE  # the gate
    # windows of other open documents and recent edits, best first (dcopilot.lsp.workspace); document text: never
    # logged unless tracing is on
    snippets: tuple[defaults.Snippet, ...] = ()


class Suggestion(msgspec.Struct, frozen=True, kw_only=True):
    text: str  # replaces text[start:end]
    start: int
    end: int  # > start when the suggestion absorbs text right of the cursor (auto-closed brackets)
    score: float = 0.0


class EditRequest(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    uri: str
    path: str
    language_id: str
    version: int
    text: str
    start: int  # selection to rewrite
    end: int
    instruction: str = ""


class TextEdit(msgspec.Struct, frozen=True, kw_only=True):
    start: int
    end: int
    new_text: str


class EditResult(msgspec.Struct, frozen=True, kw_only=True):
    edits: list[TextEdit]
    message: str = ""  # why there is no edit, when there is none
    score: float | None = None  # the engine's score of the rewrite it chose (None: no draw was usable)


class CompletionService(Protocol):
    async def complete(self, req: CompletionRequest) -> list[Suggestion]:
        """Suggestions for the cursor; raises Cancelled when cancel(req.key) or task cancellation stops it."""
        ...

    async def edit(self, req: EditRequest) -> EditResult: ...

    def cancel(self, request_key: str) -> None: ...

    def status(self) -> Status: ...

    def start(self, on_status: Callable[[Status], None]) -> None:
        """Begin loading the model in the background; `on_status` is called (from any thread) on each change."""
        ...

    def close(self) -> None: ...
