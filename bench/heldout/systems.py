"""The model under test, reached the way an editor reaches it.

- InProcess: the server's own path without JSON-RPC: the document is held as a `dcopilot.lsp.documents.Document`, the
  request is built from its snapshot with the settings `dcopilot serve` derives from the config
  (dcopilot.copilot.daemon.settings_from), `EngineService.complete` runs it on the real model worker thread, and the
  server's filters (dcopilot.lsp.items.absorb_line_end, single_line) shape the first suggestion. Not exercised: the
  scheduler's debounce and cache, which only matter while typing.
- Server: a real `dcopilot serve` process over stdio; each case is didOpen, an automatic
  textDocument/inlineCompletion (as an editor sends while typing), didClose.
Both return an Answer: the inserted text (None: nothing shown), the characters it replaces right of the cursor,
seconds, and the engine's score of the suggestion where the path exposes it (in-process; LSP items carry none).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOT_URI = "file:///heldout"


@dataclass(frozen=True)
class Answer:
    text: str | None
    replace: int = 0
    seconds: float = 0.0
    score: float | None = None


DEBIAN_TREES = ("usr/share/gocode/src/", "usr/share/cargo/registry/")


def display_path(key: str) -> str:
    """The file's path as its project has it ("package@version/path" keys; Debian's install trees dropped)."""
    at = key.index("@", 1)  # the version separator (an npm scope starts with "@")
    name, path = key[:at], key[at:].split("/", 1)[1]
    for tree in DEBIAN_TREES:
        if path.startswith(tree):
            return path[len(tree) :]
    return f"{name.lstrip('@').replace('/', '-')}/{path}"


def uri_of(key: str) -> str:
    return f"{ROOT_URI}/{display_path(key)}"


def line_col(text: str, offset: int) -> tuple[int, int]:
    """Line and code-point column of `offset`."""
    return text.count("\n", 0, offset), offset - (text.rfind("\n", 0, offset) + 1)


def offset_of(text: str, line: int, col: int) -> int:
    start = 0
    for _ in range(line):
        start = text.index("\n", start) + 1
    return start + col


def at_cursor(text: str, cursor: int, new: str, start: int, end: int) -> tuple[str | None, int]:
    """An edit text[start:end] = new, as (insertion at `cursor`, characters it replaces right of the cursor)."""
    if start <= cursor:
        typed = text[start:cursor]
        if not new.startswith(typed):
            return None, 0  # rewrites what is left of the cursor: not a completion
        return new[len(typed) :], max(0, end - cursor)
    return text[cursor:start] + new, end - cursor


def ready_service(config, load_timeout: float = 900.0):
    """The server's EngineService for `config`, started, once its model is ready: (service, its last status)."""
    from dcopilot.copilot.daemon import make_service

    service = make_service(config)
    ready = threading.Event()
    last = []

    def on_status(status) -> None:
        last.append(status)
        if status.state != "loading":
            ready.set()

    service.start(on_status)
    if not ready.wait(load_timeout) or not last or last[-1].state != "ready":
        raise RuntimeError(f"model not ready: {getattr(last[-1], 'message', 'timeout') if last else 'timeout'}")
    return service, last[-1]


class InProcess:
    def __init__(self, config, load_timeout: float = 900.0):
        from dcopilot.copilot.daemon import settings_from

        self.settings = settings_from(config)
        self.snippets = config.completion.snippets  # as serve_main's ServerOptions
        self.service, self.status = ready_service(config, load_timeout)
        self.loop = asyncio.new_event_loop()

    def describe(self) -> str:
        assert self.status is not None, "__init__ returns only once the service is ready"
        return f"{self.status.model} on {self.status.device} (in-process)"

    def complete(
        self, doc: str, cursor: int, language: str, key: str, others: tuple[tuple[str, str], ...] = ()
    ) -> Answer:
        """`others`: (key, text) of the documents open beside this one, whose windows the server ranks into
        snippets."""
        from dcopilot.lsp import encoding as enc
        from dcopilot.lsp import items
        from dcopilot.lsp.documents import DocumentStore
        from dcopilot.lsp.server import relative_path
        from dcopilot.lsp.service import CompletionRequest
        from dcopilot.lsp.workspace import WorkspaceContext

        uri = uri_of(key)
        store = DocumentStore()
        for other, other_text in others:
            store.open(uri_of(other), language, 1, other_text)
        store.open(uri, language, 1, doc)
        document = store.get(uri)
        assert document is not None, "a held-out file is far below the store's size cap"
        snap = document.snapshot(*line_col(doc, cursor), enc.UTF32)
        snippets = WorkspaceContext().snippets(store, snap, lambda u: relative_path(u, ["/heldout"]), self.snippets)
        req = CompletionRequest(
            key=uri,
            uri=uri,
            path=relative_path(uri, ["/heldout"]),
            language_id=language,
            version=1,
            text=snap.text,
            offset=snap.offset,
            candidates=1,
            max_tokens=self.settings.max_tokens,
            hypotheses=self.settings.hypotheses,
            multiline=self.settings.multiline,
            min_score=self.settings.min_score,
            snippets=snippets,
        )
        t0 = time.perf_counter()
        got = self.loop.run_until_complete(self.service.complete(req))
        seconds = time.perf_counter() - t0
        s = items.single_line(snap, items.absorb_line_end(snap, got[0])) if got else None
        if s is None or not s.text:
            return Answer(None, 0, seconds)
        text, replace = at_cursor(snap.text, snap.offset, s.text, s.start, s.end)
        return Answer(text, replace, seconds, None if text is None else s.score)

    def close(self) -> None:
        self.service.close()
        self.loop.close()


class Server:
    """A `dcopilot serve` child process, driven over stdio like an editor."""

    def __init__(self, env: dict[str, str] | None = None, timeout: float = 900.0):
        sys.path.insert(0, str(ROOT / "bench"))
        from lsp_latency import Client  # the benchmark's JSON-RPC client

        self.loop = asyncio.new_event_loop()
        self.timeout = timeout
        exe = Path(sys.executable).with_name("dcopilot")
        cmd = [str(exe), "serve"] if exe.exists() else [sys.executable, "-m", "dcopilot.copilot", "serve"]
        self.proc = self.loop.run_until_complete(
            asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        )
        try:
            self.client = self.loop.run_until_complete(self._start(Client))
        except BaseException:
            self.proc.kill()  # a server that never became ready must not outlive the benchmark
            self.loop.run_until_complete(self.proc.wait())
            self.loop.close()
            raise

    async def _start(self, client_cls):
        client = client_cls(self.proc)
        await asyncio.wait_for(
            client.request(
                "initialize",
                {
                    "processId": os.getpid(),
                    "rootUri": ROOT_URI,
                    "capabilities": {"general": {"positionEncodings": ["utf-32"]}},
                    "initializationOptions": {"candidates": 1},
                },
            ),
            self.timeout,
        )
        client.notify("initialized", {})
        deadline = time.monotonic() + self.timeout
        while not client.statuses or client.statuses[-1]["state"] == "loading":
            if time.monotonic() > deadline or self.proc.returncode is not None:
                raise RuntimeError("dcopilot serve: the model did not become ready")
            await asyncio.sleep(0.05)
        if client.statuses[-1]["state"] != "ready":
            raise RuntimeError(f"dcopilot serve: {client.statuses[-1]['message']}")
        return client

    def describe(self) -> str:
        s = self.client.statuses[-1]
        return f"{s['model']} on {s['device']} (dcopilot serve over stdio)"

    def complete(
        self, doc: str, cursor: int, language: str, key: str, others: tuple[tuple[str, str], ...] = ()
    ) -> Answer:
        return self.loop.run_until_complete(self._complete(doc, cursor, language, key, others))

    async def _complete(self, doc: str, cursor: int, language: str, key: str, others: tuple[tuple[str, str], ...]):
        uri = uri_of(key)
        c = self.client
        for other, text in (*others, (key, doc)):  # the case's document last: the most recently used, as typed in
            c.notify(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri_of(other), "languageId": language, "version": 1, "text": text}},
            )
        line, col = line_col(doc, cursor)
        t0 = time.perf_counter()
        _, reply = await asyncio.wait_for(
            c.request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": uri},
                    "position": {"line": line, "character": col},
                    "context": {"triggerKind": 2},
                },
            ),
            self.timeout,
        )
        seconds = time.perf_counter() - t0
        for other, _ in (*others, (key, doc)):
            c.notify("textDocument/didClose", {"textDocument": {"uri": uri_of(other)}})
        if "error" in reply:
            raise RuntimeError(f"inlineCompletion failed: {reply['error']}")
        found = (reply.get("result") or {}).get("items") or []
        if not found:
            return Answer(None, 0, seconds)
        item = found[0]
        text = item["insertText"] if isinstance(item["insertText"], str) else item["insertText"]["value"]
        r = item.get("range") or {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}
        start = offset_of(doc, r["start"]["line"], r["start"]["character"])
        end = offset_of(doc, r["end"]["line"], r["end"]["character"])
        inserted, replace = at_cursor(doc, cursor, text, start, end)
        return Answer(inserted, replace, seconds)

    def close(self) -> None:
        async def stop():
            try:
                await asyncio.wait_for(self.client.request("shutdown", None), 30)
                self.client.notify("exit", None)
                await asyncio.wait_for(self.proc.wait(), 30)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()

        self.loop.run_until_complete(stop())
        self.loop.close()
