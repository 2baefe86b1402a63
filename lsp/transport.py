"""JSON-RPC framing and the pygls protocol subclass: where bad input is turned into proper errors.

Stock pygls drops, with only a log line, a request whose JSON is malformed or whose params do not validate,
so the client waits forever. Here:
- `read_messages` frames the stream itself: malformed JSON gets ParseError (-32700, id null), a body that is
  not a JSON-RPC object gets InvalidRequest (-32600), bodies over MAX_MESSAGE_BYTES are skipped and
  answered, invalid UTF-8 is replaced by U+FFFD (the message is kept, not lost).
- `DcopilotProtocol` answers requests whose params do not validate with InvalidParams (-32602), answers
  requests after `shutdown` with InvalidRequest, and keeps document text out of pygls' workspace (the store
  in lsp.documents is the only copy and tolerates unknown documents).
Stdio and TCP (loopback only) share the same reader. Once the client has gone (EOF on its input, or a write
that fails with a broken pipe), replies that finish late are dropped with a debug line instead of pygls'
ERROR and traceback per reply, and the process still exits 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger("dcopilot.lsp")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CONTENT_LENGTH = re.compile(rb"content-length:[ \t]*(\d+)", re.IGNORECASE)
# Expected outcomes, not faults: the document moved on under an edit; a newer request superseded this one.
EXPECTED_ERRORS = {types.LSPErrorCodes.ContentModified.value, types.LSPErrorCodes.RequestCancelled.value}


class _Unusable:
    """A message that could not be structured; a request among them is answered with `error`."""

    def __init__(self, msg_id: Any, error: JsonRpcException | None, is_request: bool):
        self.msg_id = msg_id if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool) else None
        self.error = error
        self.is_request = is_request


class DcopilotProtocol(LanguageServerProtocol):
    client_gone = False  # set on EOF or a broken pipe: from then on nothing is written

    def client_left(self, why: str) -> None:
        if not self.client_gone:
            self.client_gone = True
            log.debug("client gone (%s): late replies are dropped", why)

    def _send_data(self, data):
        if self.client_gone:
            # A reply that finished after the editor quit: nobody reads it, and pygls would log an ERROR.
            what = data.get("id", data.get("method")) if isinstance(data, dict) else getattr(data, "id", None)
            log.debug("dropped a late message (%s): the client has gone", what)
            return
        super()._send_data(data)

    def structure_message(self, data: dict[str, Any]):
        if "jsonrpc" in data and "id" in data and _Unusable(data["id"], None, False).msg_id is None:
            error = JsonRpcInvalidRequest("id must be a string or a number")
            return _Unusable(None, error, is_request="method" in data)
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            return _Unusable(data.get("id"), exc, is_request="method" in data and "id" in data)

    def handle_message(self, message):
        if isinstance(message, _Unusable):
            if message.is_request:
                _error_reply(self, message.msg_id, message.error)
            else:
                log.warning("dropped a notification or response that does not validate: %s", message.error)
            return
        if self._shutdown and getattr(message, "method", types.EXIT) != types.EXIT and hasattr(message, "id"):
            # requests only (responses have no method): answer instead of pygls' silent drop
            _error_reply(self, message.id, JsonRpcInvalidRequest("server is shut down"))
            return
        super().handle_message(message)

    def _send_handler_result(self, future, *, msg_id):
        # pygls logs every JsonRpcException a handler raises at ERROR with a traceback, but ours are answers
        # (ContentModified for a stale edit, RequestCancelled when superseded, ...): one line at debug/info.
        exc = None if future.cancelled() else future.exception()
        if not isinstance(exc, JsonRpcException):
            super()._send_handler_result(future, msg_id=msg_id)
            return
        self._request_futures.pop(msg_id, None)
        level = logging.DEBUG if exc.code in EXPECTED_ERRORS else logging.INFO
        log.log(level, "request %s answered with error %d: %s", msg_id, exc.code, exc.message)
        self._send_response(msg_id, error=exc.to_response_error())

    # The document store in DcopilotServer is the only copy of the text: forward without touching pygls'.
    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params):
        yield self.fm.features[types.TEXT_DOCUMENT_DID_OPEN], (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params):
        yield self.fm.features[types.TEXT_DOCUMENT_DID_CHANGE], (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params):
        yield self.fm.features[types.TEXT_DOCUMENT_DID_CLOSE], (params,), None


def converter():
    """lsprotocol's converter, but custom messages keep plain JSON params (pygls' default turns them into
    namedtuples, renaming keys that are not identifiers); lsp.protocol decodes them with msgspec."""
    from lsprotocol import converters
    from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, JsonRPCResponseMessage

    conv = converters.get_converter()
    for cls in (JsonRPCRequestMessage, JsonRPCResponseMessage, JsonRPCNotification):
        fields = {f.name for f in cls.__attrs_attrs__}
        conv.register_structure_hook(
            cls,
            lambda obj, cls, fields=fields: cls(**{"params": None, **{k: v for k, v in obj.items() if k in fields}}),
        )
    return conv


def _error_reply(proto: LanguageServerProtocol, msg_id: Any, exc: JsonRpcException) -> None:
    if msg_id is None:
        # JSON-RPC wants `"id": null` here; pygls' converter would drop the None field altogether.
        proto._send_data({"jsonrpc": "2.0", "id": None, "error": {"code": exc.code, "message": exc.message}})
    else:
        proto._send_response(msg_id, error=exc.to_response_error())


def dispatch(proto: LanguageServerProtocol, body: bytes) -> None:
    """Decode one message body and hand it to the protocol; every malformed request gets an error reply."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("message body is not valid UTF-8; invalid bytes replaced by U+FFFD")
        text = body.decode("utf-8", errors="replace")
    try:
        message = json.loads(text, object_hook=proto.structure_message)
    except (ValueError, RecursionError) as exc:
        log.warning("malformed JSON-RPC message: %s", exc)
        _error_reply(proto, None, JsonRpcParseError(f"parse error: {exc}"))
        return
    if isinstance(message, dict) or not hasattr(message, "jsonrpc") and not isinstance(message, _Unusable):
        msg_id = message.get("id") if isinstance(message, dict) else None
        valid_id = msg_id if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool) else None
        _error_reply(proto, valid_id, JsonRpcInvalidRequest("not a JSON-RPC 2.0 request or notification"))
        return
    proto.handle_message(message)


async def read_messages(reader, proto: LanguageServerProtocol, stop) -> None:
    """The LSP base protocol: headers, a blank line, Content-Length bytes of JSON."""
    try:
        await _read_messages(reader, proto, stop)
    finally:
        # EOF (or the loop ends): requests still running must not write to a client that is no longer there.
        if isinstance(proto, DcopilotProtocol):
            proto.client_left("end of input")


async def _read_messages(reader, proto: LanguageServerProtocol, stop) -> None:
    while not stop.is_set():
        length: int | None = None
        while True:
            header = await reader.readline()
            if not header:
                return  # EOF: the client went away
            if not header.strip():
                if length is not None:
                    break
                continue
            # Searched, not matched at the line start: after a frame without headers the next header still
            # follows the garbage on the same line, and the stream resynchronises there.
            found = CONTENT_LENGTH.search(header)
            if found:
                length = int(found[1])
        if length > MAX_MESSAGE_BYTES:
            log.warning("skipping a %d-byte message (cap %d)", length, MAX_MESSAGE_BYTES)
            remaining = length
            while remaining:
                chunk = await reader.readexactly(min(remaining, 1 << 20))
                if not chunk:
                    return
                remaining -= len(chunk)
            _error_reply(proto, None, JsonRpcInvalidRequest(f"message over {MAX_MESSAGE_BYTES} bytes"))
            continue
        body = await reader.readexactly(length)
        if len(body) < length:
            return
        dispatch(proto, body)


class _HideArgs(logging.Filter):
    """pygls logs whole messages (document text included) as format arguments: keep the template only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg, record.args = f"{record.msg} [arguments hidden; trace = true shows them]", ()
        return True


def quiet_pygls(trace: bool) -> None:
    """Document text reaches the log only when tracing (README: privacy)."""
    pygls_log = logging.getLogger("pygls")
    if not trace:
        pygls_log.setLevel(logging.WARNING)
        pygls_log.addFilter(_HideArgs())
        for name in (
            "pygls.protocol.json_rpc",
            "pygls.protocol.language_server",
            "pygls.server",
            "pygls.feature_manager",
        ):
            logging.getLogger(name).addFilter(_HideArgs())


class _GuardedWriter:
    """pygls' writer, except that a write to a client that has gone marks it gone instead of raising: pygls
    would log an ERROR with a traceback for it, and again for every reply after it."""

    def __init__(self, inner, proto: DcopilotProtocol, on_broken=lambda: None):
        self.inner = inner
        self.proto = proto
        self.on_broken = on_broken

    def write(self, data: bytes):
        try:
            return self.inner.write(data)
        except (BrokenPipeError, ConnectionResetError, ValueError) as exc:  # ValueError: the file is closed
            self.proto.client_left(type(exc).__name__)
            self.on_broken()
            return None

    def close(self):
        try:
            return self.inner.close()
        except (OSError, ValueError):
            return None


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null: the interpreter's final flush of stdout must not fail on the broken pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def serve_stdio(server) -> int:
    from pygls.io_ import StdinAsyncReader, StdoutWriter

    stop = threading.Event()
    server._stop_event = stop
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() anywhere must not corrupt the LSP stream
    server.protocol.set_writer(_GuardedWriter(StdoutWriter(out), server.protocol, _discard_stdout))

    async def main():
        await read_messages(StdinAsyncReader(sys.stdin.buffer, server.thread_pool), server.protocol, stop)

    return _run(server, main)


def serve_tcp(server, port: int, host: str = "127.0.0.1") -> int:
    """One client over TCP on the loopback interface; the server exits when it disconnects."""

    stop = threading.Event()
    server._stop_event = stop

    async def main():
        done = asyncio.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            server.protocol.set_writer(_GuardedWriter(writer, server.protocol))  # type: ignore[arg-type]
            try:
                await read_messages(_StreamReader(reader), server.protocol, stop)
            finally:
                done.set()

        tcp = await asyncio.start_server(connection, host, port)
        log.info("listening on %s", ", ".join(str(s.getsockname()) for s in tcp.sockets))
        async with tcp:
            await done.wait()

    return _run(server, main)


class _StreamReader:
    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader

    async def readline(self) -> bytes:
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self._reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial


def _run(server, main) -> int:
    quiet_pygls(server.options.trace)
    code = 0
    try:
        asyncio.run(main())
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        server.service.close()
        server.shutdown()
    return code
