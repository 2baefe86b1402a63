"""The dcopilot language server: pygls 2 handlers over lsprotocol types.

Handlers are thin: positions become snapshot offsets (dcopilot.lsp.documents / dcopilot.lsp.encoding), completion
requests go through dcopilot.lsp.scheduler to a `CompletionService`, results come back as items in the negotiated
position encoding. This module never imports torch: `dcopilot.copilot.daemon` hands it the real service, tests may
hand it a deterministic one. Framing and bad-input handling are in dcopilot.lsp.transport.

Every request is answered: with a result, with RequestCancelled (-32800) when superseded or cancelled, with
ContentModified (-32801) when an edit's document moved on, or with InvalidParams for what cannot be used.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import msgspec
from dcopilot.engine.tasks.requests import SNIPPETS
from dcopilot.lsp import encoding as enc
from dcopilot.lsp import items, protocol
from dcopilot.lsp.documents import Change, DocumentStore, Snapshot
from dcopilot.lsp.scheduler import Scheduler
from dcopilot.lsp.service import Cancelled, CompletionRequest, CompletionService, EditRequest, Status, Suggestion
from dcopilot.lsp.settings import Settings, update
from dcopilot.lsp.stats import Metrics
from dcopilot.lsp.transport import DcopilotProtocol, converter
from dcopilot.lsp.version import dcopilot_version
from dcopilot.lsp.workspace import WorkspaceContext
from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcContentModified, JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

log = logging.getLogger("dcopilot.lsp")

SHOWN_REMEMBERED = 32  # shown suggestions kept for speculation


@dataclass(frozen=True)
class ServerOptions:
    max_document_chars: int = 16 * 1024 * 1024
    trace: bool = False  # only then may document text reach the log
    apply_edit_timeout_s: float = 30.0  # an editor that never answers workspace/applyEdit must not hold a command
    snippets: int = SNIPPETS  # windows of other open documents and recent edits sent with a completion request


class DcopilotServer(LanguageServer):
    def __init__(self, service: CompletionService, options: ServerOptions = ServerOptions(), settings=Settings()):
        super().__init__(
            "dcopilot", dcopilot_version(), protocol_cls=DcopilotProtocol, converter_factory=converter, max_workers=4
        )
        self.service = service
        self.options = options
        self.settings = settings
        self.docs = DocumentStore(max_chars=options.max_document_chars)
        self.neighbours = WorkspaceContext()
        self.scheduler = Scheduler(service)
        self.metrics = Metrics()
        self.encoding = enc.UTF16
        self.service_status = Status(state="loading", message="not started")
        # shown suggestion id -> (its request, the suggestion, the snapshot, whether the request carries snippets)
        self._shown: OrderedDict[str, tuple[CompletionRequest, Suggestion, Snapshot, bool]] = OrderedDict()
        self._progress: asyncio.Queue | None = None
        self._progress_task: asyncio.Future | None = None  # held: the event loop keeps tasks only weakly
        self._loop: asyncio.AbstractEventLoop | None = None
        self.roots: list[str] = []  # workspace folders as file system paths
        self._numbered = 0  # request tags in debug lines ("c12"), so one request's lines can be followed

    def report_server_error(self, error, source):
        log.error("%s: %s", source.__name__, error)  # logged; never a popup per bad message

    # -- helpers used by the handlers -------------------------------------------------------------------------

    def client_has(self, dotted: str) -> bool:
        """Whether the client declared the capability at `dotted` (a path of lsprotocol attribute names)."""
        return bool(get_capability(getattr(self.protocol, "client_capabilities", None), dotted, False))

    def apply_settings(self, raw: object) -> None:
        self.settings, problem = update(self.settings, raw)
        if problem:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=problem))

    def snapshot(self, uri: str, position: types.Position) -> Snapshot | None:
        doc = self.docs.get(uri)
        return None if doc is None else doc.snapshot(position.line, position.character, self.encoding)

    def is_current(self, snap: Snapshot) -> bool:
        """The document is still the text `snap` was cut from: same version of the same open (a close and a
        reopen restart versions, so the version alone does not say)."""
        return self.docs.version(snap.uri) == snap.version and self.docs.generation(snap.uri) == snap.generation

    def display_path(self, uri: str) -> str:
        return relative_path(uri, self.roots)

    def completion_request(self, snap: Snapshot, candidates: int) -> CompletionRequest:
        """The request for `snap`, without snippets: `with_snippets` adds them once the model is to run."""
        return CompletionRequest(
            key=snap.uri,
            uri=snap.uri,
            path=self.display_path(snap.uri),
            language_id=snap.language_id,
            version=snap.version,
            text=snap.text,
            offset=snap.offset,
            candidates=candidates,
            max_tokens=self.settings.max_tokens,
            hypotheses=self.settings.hypotheses,
            multiline=self.settings.multiline,
            min_score=self.settings.min_score,
        )

    def with_snippets(self, req: CompletionRequest, snap: Snapshot, tag: str) -> CompletionRequest:
        """`req` with the workspace windows most like the code around `snap`'s cursor. Ranked only for a request
        that reaches the model: over every open document this costs milliseconds on the event loop."""
        snippets = self.neighbours.snippets(self.docs, snap, self.display_path, self.options.snippets)
        log.debug("%s %d snippets from %s", tag, len(snippets), ", ".join(s.path for s in snippets) or "-")
        if self.options.trace:
            for snip in snippets:
                log.debug("%s snippet %s:\n%s", tag, snip.path, snip.text)
        return msgspec.structs.replace(req, snippets=snippets)

    def tag(self, prefix: str) -> str:
        self._numbered += 1
        return f"{prefix}{self._numbered}"

    async def suggest(
        self, uri: str, position: types.Position, invoked: bool, what: str = "completion"
    ) -> tuple[Snapshot | None, list[tuple[str, Suggestion]]]:
        """The shared path of inline and menu completion; [] when there is nothing to offer (and the snapshot is
        None when the document is not open)."""
        started = time.monotonic()
        tag = self.tag("c")
        snap = self.snapshot(uri, position)
        log.debug(
            "%s %s %s v%s at %d:%d",
            tag,
            what,
            uri,
            None if snap is None else snap.version,
            position.line,
            position.character,
        )
        idle = _why_idle(snap, self.settings.enable, self.service_status.state)
        if idle or snap is None:
            if snap is None:
                log.info("completion for a document that is not open: %s", uri)
            log.debug("%s empty: %s", tag, idle)
            self.metrics.answered(total=time.monotonic() - started, debounce=0, model=0, cached=False, empty=True)
            return snap, []
        req = self.completion_request(snap, self.settings.candidates if invoked else 1)
        sent: list[CompletionRequest] = []  # the request with its snippets, once it goes to the model

        def prepare(r: CompletionRequest) -> CompletionRequest:
            sent.append(self.with_snippets(r, snap, tag))
            return sent[-1]

        debounce = 0.0 if invoked else self.scheduler.delay(uri, self.settings.debounce_ms / 1000)
        try:
            outcome = await self.scheduler.complete(req, debounce, tag=tag, prepare=prepare)
        except (asyncio.CancelledError, Cancelled) as exc:
            self.metrics.add("cancelled")
            if isinstance(exc, Cancelled):
                log.debug("%s cancelled: the engine stopped it (a newer request or shutdown)", tag)
                raise JsonRpcRequestCancelled("superseded") from None
            raise
        fresh = self.is_current(snap)
        if not fresh:
            self.metrics.add("stale")  # computed for text that changed: cached, not returned
            log.debug(
                "%s result dropped: computed for v%d, the document is now at v%s (kept in the cache)",
                tag,
                snap.version,
                self.docs.version(uri),
            )
        chosen: list[tuple[str, Suggestion]] = []
        seen = set()
        dropped = {"range past the line end": 0, "empty": 0, "duplicate": 0}
        for raw in outcome.suggestions if fresh else ():
            s = items.single_line(snap, items.absorb_line_end(snap, raw))
            why = "range past the line end" if s is None else "empty" if not s.text else ""
            if s is None or why or (s.text, s.start, s.end) in seen:
                dropped[why or "duplicate"] += 1
                continue
            seen.add((s.text, s.start, s.end))
            sid = uuid.uuid4().hex[:12]
            self.metrics.offered(sid, s.text)
            self._shown[sid] = (sent[-1] if sent else req, s, snap, bool(sent))
            while len(self._shown) > SHOWN_REMEMBERED:
                self._shown.popitem(last=False)
            chosen.append((sid, s))
        total = time.monotonic() - started
        self.metrics.answered(
            total=total, debounce=outcome.debounce, model=outcome.model, cached=outcome.cached, empty=not chosen
        )
        if fresh:
            log.debug(
                "%s %s: %d from %s -> %d offered%s; %.0f ms (debounce %.0f, model %.0f)",
                tag,
                "answered" if chosen else "empty",
                len(outcome.suggestions),
                outcome.source,
                len(chosen),
                _counts(dropped),
                total * 1000,
                outcome.debounce * 1000,
                outcome.model * 1000,
            )
        return snap, chosen

    async def rewrite(self, uri: str, rng: protocol.Range, instruction: str, version: int | None):
        """Run an in-line edit; returns (version, [lsp TextEdit]) for the version the edits apply to."""
        doc = self.docs.get(uri)
        if doc is None:
            raise JsonRpcInvalidParams(f"document is not open: {uri}")
        if version is not None and version != doc.version:
            raise JsonRpcContentModified(f"document is at version {doc.version}, not {version}")
        tag = self.tag("e")
        log.debug(
            "%s edit %s v%d %d:%d-%d:%d, instruction of %d chars",
            tag,
            uri,
            doc.version,
            rng.start.line,
            rng.start.character,
            rng.end.line,
            rng.end.character,
            len(instruction),
        )
        if self.service_status.state != "ready":
            log.debug("%s refused: model %s", tag, self.service_status.state)
            raise not_ready(self.service_status)
        started = time.monotonic()
        snap = doc.snapshot(rng.start.line, rng.start.character, self.encoding)
        start = snap.index(*doc.index(rng.start.line, rng.start.character, self.encoding))
        end = snap.index(*doc.index(rng.end.line, rng.end.character, self.encoding))
        first, last = sorted(
            (
                doc.index(rng.start.line, rng.start.character, self.encoding),
                doc.index(rng.end.line, rng.end.character, self.encoding),
            )
        )
        # Within one line both ends must be inside the excerpt: index() clamps an end past a cut line's excerpt.
        if start is None or end is None or (first[0] == last[0] and abs(end - start) != last[1] - first[1]):
            raise JsonRpcInvalidParams("selection too large for an in-line edit")
        start, end = min(start, end), max(start, end)
        req = EditRequest(
            key=f"{uri}#edit",
            uri=uri,
            path=self.display_path(uri),
            language_id=snap.language_id,
            version=snap.version,
            text=snap.text,
            start=start,
            end=end,
            instruction=instruction,
        )
        try:
            result = await self.service.edit(req)
        except Cancelled:
            log.debug("%s cancelled: the engine stopped it", tag)
            raise JsonRpcRequestCancelled("edit cancelled") from None
        except asyncio.CancelledError:
            log.debug("%s cancelled by the client", tag)
            raise
        if not self.is_current(snap):
            log.debug(
                "%s result dropped: computed for v%d (open #%d), the document is now at v%s (open #%s)",
                tag,
                snap.version,
                snap.generation,
                self.docs.version(uri),
                self.docs.generation(uri),
            )
            raise JsonRpcContentModified("the document changed while the edit was computed")
        log.debug(
            "%s %d edits for %d selected chars in %.0f ms%s",
            tag,
            len(result.edits),
            end - start,
            (time.monotonic() - started) * 1000,
            "" if result.edits else f" ({result.message})",
        )
        return snap.version, items.text_edits(snap, result.edits), result.message

    def workspace_edit(self, uri: str, version: int, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
        return types.WorkspaceEdit(
            document_changes=[
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=edits
                )
            ]
        )

    # -- status and progress ----------------------------------------------------------------------------------

    def on_status(self, status: Status) -> None:
        """Called from any thread by the service."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._publish_status, status)

    def _publish_status(self, status: Status) -> None:
        previous, self.service_status = self.service_status, status
        self.protocol.notify(
            protocol.STATUS,
            protocol.encode(status),
        )
        if status.state == "error" and previous.state != "error":
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=f"dcopilot: {status.message}")
            )
        if not self.client_has("window.work_done_progress"):
            return
        if self._progress is None and status.state == "loading":
            self._progress = asyncio.Queue()
            self._progress_task = asyncio.ensure_future(self._progress_pump(self._progress))
        if self._progress is not None:
            self._progress.put_nowait(status)
            if status.state != "loading":
                self._progress = None

    async def _progress_pump(self, queue: asyncio.Queue) -> None:
        token = f"dcopilot/load/{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=10)
        except Exception as exc:  # the client may refuse or never answer; status notifications still flow
            log.info("no progress token (%s)", exc)
            return
        begun = False
        while True:
            status: Status = await queue.get()
            pct = None if status.progress is None else int(100 * status.progress)
            if not begun:
                self.work_done_progress.begin(
                    token, types.WorkDoneProgressBegin(title="dcopilot", message=status.message, percentage=pct)
                )
                begun = True
            elif status.state == "loading":
                self.work_done_progress.report(
                    token, types.WorkDoneProgressReport(message=status.message, percentage=pct)
                )
            if status.state != "loading":
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=status.message))
                return


def _why_idle(snap: Snapshot | None, enabled: bool, state: str) -> str:
    """Why a completion request gets [] without asking the model ("" when it should ask)."""
    if snap is None:
        return "document not open"
    if not enabled:
        return "disabled in settings"
    if state != "ready":
        return f"model {state}"
    if "\x00" in snap.text:
        return "document contains NUL characters"
    return ""


def _counts(dropped: dict[str, int]) -> str:
    shown = ", ".join(f"{n} {why}" for why, n in dropped.items() if n)
    return f" (dropped: {shown})" if shown else ""


def not_ready(status: Status) -> JsonRpcException:
    # ServerNotInitialized would be wrong (we are); RequestFailed (-32803) says "try later / see status".
    return JsonRpcException(
        f"model not ready ({status.state}): {status.message}", code=types.LSPErrorCodes.RequestFailed.value
    )


def relative_path(uri: str, roots: list[str]) -> str:
    """What the model sees on its `<|file|>` line: the path inside the workspace, as in training ('/'-separated);
    the file name for files outside every root; "" for URIs that are not files."""
    path = to_fs_path(uri) if uri.startswith("file:") else None
    if not path:
        return ""
    for root in sorted(roots, key=len, reverse=True):
        if path.startswith(root.rstrip("/") + "/"):
            return path[len(root.rstrip("/")) + 1 :].replace("\\", "/")
    return PurePosixPath(path.replace("\\", "/")).name


# -- handlers -----------------------------------------------------------------------------------------------------


def initialize(ls: DcopilotServer, params: types.InitializeParams) -> None:
    ls._loop = asyncio.get_running_loop()
    general = params.capabilities.general
    # Same rule as pygls' ServerCapabilitiesBuilder, which advertises it: the client's first supported choice.
    ls.encoding = enc.choose(list(general.position_encodings or []) if general else None)
    ls.apply_settings(params.initialization_options)
    uris = [f.uri for f in params.workspace_folders or []] + [params.root_uri or ""]
    ls.roots = [p for p in (to_fs_path(u) for u in uris if u) if p] + ([params.root_path] if params.root_path else [])


def initialized(ls: DcopilotServer, params: types.InitializedParams) -> None:
    ls.service.start(ls.on_status)  # the model loads in the background; status and $/progress report it


def shutdown(ls: DcopilotServer, params: None) -> None:
    ls.service.close()


def did_open(ls: DcopilotServer, params: types.DidOpenTextDocumentParams) -> None:
    d = params.text_document
    refused = ls.docs.open(d.uri, d.language_id, d.version, d.text)
    if refused:
        log.warning("%s: %s", d.uri, refused)


def did_change(ls: DcopilotServer, params: types.DidChangeTextDocumentParams) -> None:
    changes = [
        Change(c.text, (c.range.start.line, c.range.start.character), (c.range.end.line, c.range.end.character))
        if isinstance(c, types.TextDocumentContentChangePartial)
        else Change(c.text)
        for c in params.content_changes
    ]
    uri = params.text_document.uri
    refused = ls.docs.change(uri, params.text_document.version, changes, ls.encoding)
    if refused:
        log.warning("%s: %s", uri, refused)
    if uri in ls.docs:  # only open documents have a typing rhythm (keeps the table bounded)
        ls.scheduler.typed(uri)


def did_close(ls: DcopilotServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.docs.close(params.text_document.uri)
    ls.neighbours.forget(params.text_document.uri)
    ls.scheduler.forget(params.text_document.uri)


async def did_change_configuration(ls: DcopilotServer, params: types.DidChangeConfigurationParams) -> None:
    if params.settings is None and ls.client_has("workspace.configuration"):
        pulled = await ls.workspace_configuration_async(
            types.ConfigurationParams(items=[types.ConfigurationItem(section="dcopilot")])
        )
        ls.apply_settings(pulled[0] if pulled else None)
    else:
        ls.apply_settings(params.settings)


async def inline_completion(ls: DcopilotServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    kind = params.context.trigger_kind
    invoked = kind == types.InlineCompletionTriggerKind.Invoked
    what = f"inline completion ({getattr(kind, 'name', kind)})"
    snap, chosen = await ls.suggest(params.text_document.uri, params.position, invoked, what)
    if snap is None:
        return types.InlineCompletionList(items=[])
    return types.InlineCompletionList(items=[items.inline_item(snap, s, sid) for sid, s in chosen])


async def completion(ls: DcopilotServer, params: types.CompletionParams) -> types.CompletionList | None:
    mode = ls.settings.completion_items
    if mode == "never" or (mode == "auto" and ls.client_has("text_document.inline_completion")):
        log.debug("menu completion %s: none (completionItems = %s)", params.text_document.uri, mode)
        return None  # the client shows inline suggestions: the same text in its menu would be noise
    kind = None if params.context is None else params.context.trigger_kind
    invoked = kind == types.CompletionTriggerKind.Invoked
    what = f"menu completion ({getattr(kind, 'name', kind)})"
    snap, chosen = await ls.suggest(params.text_document.uri, params.position, invoked, what)
    return types.CompletionList(
        is_incomplete=True,  # ask again as the user types: the suggestion follows the cursor
        items=[]
        if snap is None
        else [items.completion_item(snap, s, sid, rank) for rank, (sid, s) in enumerate(chosen)],
    )


def code_action(ls: DcopilotServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    doc = ls.docs.get(params.text_document.uri)
    if doc is None or params.range.start == params.range.end:
        return []
    args = protocol.encode(
        protocol.InlineEditParams(
            text_document=protocol.DocumentRef(uri=doc.uri, version=doc.version), range=_range_in(params.range)
        )
    )
    caps = ls.protocol.client_capabilities.text_document
    support = caps.code_action.resolve_support if caps is not None and caps.code_action is not None else None
    resolve = support is not None and "edit" in support.properties
    kind = types.CodeActionKind.RefactorRewrite
    rewrite = types.CodeAction(title="Rewrite with dcopilot", kind=kind)
    if resolve:
        rewrite.data = args  # the edit is computed in codeAction/resolve, only when the user picks it
    else:
        rewrite.command = types.Command(title=rewrite.title, command=protocol.CMD_REWRITE, arguments=[args])
    title = "Rewrite with dcopilot (instruction)…"
    instructed = types.CodeAction(
        title=title,
        kind=kind,
        command=types.Command(title=title, command=protocol.CMD_REWRITE_INSTRUCTION, arguments=[args]),
    )
    return [rewrite, instructed]


async def code_action_resolve(ls: DcopilotServer, action: types.CodeAction) -> types.CodeAction:
    p = _edit_params(action.data)
    try:
        version, edits, message = await ls.rewrite(p.text_document.uri, p.range, p.instruction, p.text_document.version)
    except JsonRpcContentModified as exc:
        action.disabled = types.CodeActionDisabled(reason=exc.message)
        return action
    if edits:
        action.edit = ls.workspace_edit(p.text_document.uri, version, edits)
    else:
        action.disabled = types.CodeActionDisabled(reason=message or "dcopilot suggests no change")
    return action


async def rewrite_command(ls: DcopilotServer, *args) -> dict:
    return await _rewrite_and_apply(ls, _edit_params(args[0] if args else None), need_instruction=False)


async def rewrite_instruction_command(ls: DcopilotServer, *args) -> dict:
    return await _rewrite_and_apply(ls, _edit_params(args[0] if args else None), need_instruction=True)


async def _rewrite_and_apply(ls: DcopilotServer, p: protocol.InlineEditParams, need_instruction: bool) -> dict:
    if need_instruction and not p.instruction.strip():
        raise JsonRpcInvalidParams("an instruction is required (the client asks the user for it)")
    version, edits, message = await ls.rewrite(p.text_document.uri, p.range, p.instruction, p.text_document.version)
    edit = ls.workspace_edit(p.text_document.uri, version, edits)
    applied = False
    if edits and ls.client_has("workspace.apply_edit"):
        # Versioned: the client refuses it if the document moved on after `version`.
        answer = ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label="dcopilot rewrite"))
        wait = ls.options.apply_edit_timeout_s
        try:
            # Shielded: a late answer then resolves the pending request instead of failing on a cancelled one.
            result = await asyncio.wait_for(asyncio.shield(answer), wait)
            applied = bool(result and result.applied)
        except TimeoutError:
            message = f"the editor did not answer workspace/applyEdit within {wait:g} s"
            log.warning("rewrite %s: %s", p.text_document.uri, message)
    return {"applied": applied, "edit": ls.protocol._converter.unstructure(edit), "message": message}


def accepted_command(ls: DcopilotServer, *args) -> None:
    event = _decode(args[0] if args else None, protocol.CompletionEvent)
    ls.metrics.accepted(event.id, None)


async def inline_edit(ls: DcopilotServer, params: Any) -> object:
    p = _edit_params(params)
    version, edits, message = await ls.rewrite(p.text_document.uri, p.range, p.instruction, p.text_document.version)
    return protocol.encode(
        protocol.InlineEditResult(
            text_document=protocol.DocumentRef(uri=p.text_document.uri, version=version),
            edits=[protocol.WireTextEdit(range=_range_in(e.range), new_text=e.new_text) for e in edits],
            message=message,
        )
    )


def did_show(ls: DcopilotServer, params: Any) -> None:
    event = _decode(params, protocol.CompletionEvent)
    ls.metrics.add("shown")
    shown = ls._shown.get(event.id)
    if ls.settings.speculative and shown is not None:
        req, s, snap, ranked = shown
        text = req.text[: s.start] + s.text + req.text[s.end :]
        ahead = msgspec.structs.replace(req, text=text, offset=s.start + len(s.text), candidates=1)
        # A suggestion served from the cache came without snippets: rank them as its request would have been.
        ls.scheduler.speculate(ahead, None if ranked else lambda r: ls.with_snippets(r, snap, "speculation"))


def did_accept(ls: DcopilotServer, params: Any) -> None:
    event = _decode(params, protocol.AcceptEvent)
    length, text = event.accepted_length, ls.metrics.text(event.id)
    if length is not None and text is not None:
        # Counted in the negotiated position encoding (UTF-16 units in VS Code, bytes for utf-8), like a column;
        # column_to_index clamps and works on any text, newlines included. Stats count code points.
        length = enc.column_to_index(text, length, ls.encoding)
    ls.metrics.accepted(event.id, length)


def did_reject(ls: DcopilotServer, params: Any) -> None:
    _decode(params, protocol.CompletionEvent)
    ls.metrics.add("rejected")


def stats(ls: DcopilotServer, params: Any) -> object:
    status = ls.service.status()
    return protocol.encode(ls.metrics.snapshot(status.engine_runs, status.engine_cancelled))


def _decode(params: object, type_):
    try:
        return protocol.decode(params, type_)
    except (msgspec.ValidationError, TypeError) as exc:
        raise JsonRpcInvalidParams(f"invalid params: {exc}") from None


def _edit_params(params: object) -> protocol.InlineEditParams:
    return _decode(params, protocol.InlineEditParams)


def _range_in(r: types.Range) -> protocol.Range:
    return protocol.Range(
        start=protocol.Position(line=r.start.line, character=r.start.character),
        end=protocol.Position(line=r.end.line, character=r.end.character),
    )


FEATURES: list[tuple[str, Any, Callable[..., Any]]] = [
    (types.INITIALIZE, None, initialize),
    (types.INITIALIZED, None, initialized),
    (types.SHUTDOWN, None, shutdown),
    (types.TEXT_DOCUMENT_DID_OPEN, None, did_open),
    (types.TEXT_DOCUMENT_DID_CHANGE, None, did_change),
    (types.TEXT_DOCUMENT_DID_CLOSE, None, did_close),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, None, did_change_configuration),
    # Registered with options: pygls 2.1 advertises inlineCompletionProvider only for a feature that has them.
    (types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions(), inline_completion),
    (types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]), completion),
    (
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.RefactorRewrite], resolve_provider=True),
        code_action,
    ),
    (types.CODE_ACTION_RESOLVE, None, code_action_resolve),
    (protocol.INLINE_EDIT, None, inline_edit),
    (protocol.DID_SHOW, None, did_show),
    (protocol.DID_ACCEPT, None, did_accept),
    (protocol.DID_REJECT, None, did_reject),
    (protocol.STATS, None, stats),
]
COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    (protocol.CMD_REWRITE, rewrite_command),
    (protocol.CMD_REWRITE_INSTRUCTION, rewrite_instruction_command),
    (protocol.CMD_ACCEPTED, accepted_command),
]


def build(
    service: CompletionService, options: ServerOptions = ServerOptions(), settings: Settings = Settings()
) -> DcopilotServer:
    server = DcopilotServer(service, options, settings)
    for method, options_, handler in FEATURES:
        server.feature(method, options_)(handler)
    for name, handler in COMMANDS:
        server.command(name)(handler)
    return server
