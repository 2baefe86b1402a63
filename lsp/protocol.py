"""Custom `dcopilot/*` messages: msgspec structs with the camelCase names clients send.

Standard LSP messages use lsprotocol types directly (dcopilot.lsp.server); only what LSP lacks lives here:
acceptance telemetry (recorded locally, never sent anywhere), statistics, status and previewable in-line
edits. Client params arrive as plain JSON objects and are decoded with `decode`, so a malformed message
fails with InvalidParams naming the field instead of a stack trace.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import msgspec

DID_SHOW = "dcopilot/didShowCompletion"
DID_ACCEPT = "dcopilot/didAcceptCompletion"
DID_REJECT = "dcopilot/didRejectCompletion"
STATS = "dcopilot/stats"
STATUS = "dcopilot/status"
INLINE_EDIT = "dcopilot/inlineEdit"

# workspace/executeCommand names
CMD_REWRITE = "dcopilot.rewrite"  # args: [{textDocument, range, instruction?}]
CMD_REWRITE_INSTRUCTION = "dcopilot.rewriteWithInstruction"  # same; the client asks the user for `instruction`
CMD_ACCEPTED = "dcopilot.acceptedCompletion"  # args: [{id}]; attached to every inline item as its `command`


# Subclasses say frozen=True again: msgspec inherits it, but type checkers only read it from each class.
class _Message(msgspec.Struct, frozen=True, rename="camel", kw_only=True, omit_defaults=True):
    pass


class Position(_Message, frozen=True):
    line: int
    character: int


class Range(_Message, frozen=True):
    start: Position
    end: Position


class DocumentRef(_Message, frozen=True):
    uri: str
    version: int | None = None  # when given, the request is refused if the document moved on


class CompletionEvent(_Message, frozen=True):
    """didShow / didReject: which suggestion (the `id` in its item's command arguments)."""

    id: str


class AcceptEvent(_Message, frozen=True):
    id: str
    # Partial accept: how much of the item's insertText was taken, counted like a position's `character` in the
    # negotiated position encoding (UTF-16 code units by default, UTF-8 bytes, or code points); None = all of it.
    accepted_length: int | None = None


class InlineEditParams(_Message, frozen=True):
    text_document: DocumentRef
    range: Range
    instruction: str = ""


class WireTextEdit(_Message, frozen=True):
    range: Range
    new_text: str


class InlineEditResult(_Message, frozen=True):
    text_document: DocumentRef  # version the edits apply to
    edits: list[WireTextEdit]
    message: str = ""


class Percentiles(_Message, frozen=True, omit_defaults=False):
    count: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class Stats(_Message, frozen=True, omit_defaults=False):
    requests: int = 0  # inline + completion requests answered
    answered_from_cache: int = 0
    cancelled: int = 0  # superseded or $/cancelRequest
    stale: int = 0  # results dropped because the document changed under them
    empty: int = 0
    shown: int = 0
    accepted: int = 0
    partially_accepted: int = 0
    rejected: int = 0
    accepted_chars: int = 0
    acceptance_rate: float | None = None  # accepted / shown
    cache_hit_rate: float | None = None
    latency: Percentiles = Percentiles()  # request to response, all answered requests
    overhead: Percentiles = Percentiles()  # same, minus debounce and model time
    model: Percentiles = Percentiles()  # worker time (queue + denoising) per model request
    engine_runs: int = 0
    engine_cancelled: int = 0


class Status(_Message, frozen=True, omit_defaults=False):
    """The model service's state: what the service reports to the server and the server notifies as-is."""

    state: Literal["loading", "ready", "error"]
    message: str = ""
    model: str = ""
    device: str = ""
    progress: float | None = None  # 0..1 while loading
    step: str = ""  # how the denoise step runs once ready: "compiled" or "eager" ("" before ready)
    step_compile_seconds: float | None = None  # compiling it before ready took this long
    step_graphs: int = 0  # (bucket, batch, canvas, first step) shapes compiled before ready
    engine_runs: int = 0  # model calls finished
    engine_cancelled: int = 0  # model calls stopped between denoising steps
    engine_seconds: float = 0.0  # total model time, for overhead accounting


T = TypeVar("T")


def decode(params: object, type_: type[T]) -> T:
    """Params as pygls hands them over (plain dicts, or attrs objects for known methods) -> a struct."""
    if hasattr(params, "__attrs_attrs__"):
        from lsprotocol import converters

        params = converters.get_converter().unstructure(params)
    return msgspec.convert(params, type_)


def encode(message: msgspec.Struct) -> object:
    """A struct -> JSON-ready builtins (pygls serialises dicts, not msgspec structs)."""
    return msgspec.to_builtins(message)
