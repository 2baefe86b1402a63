"""The pygls protocol subclass and the read loop: where bad input is turned into proper errors.

Stock pygls drops, with only a log line, a request whose JSON is malformed, whose params do not validate or
whose `jsonrpc` is not "2.0", so the client waits forever; lets an unhashable `$/cancelRequest` id or a reply
it cannot encode escape as an exception; answers internal errors with a traceback in `error.data`; and logs
every unknown method at ERROR. Here every request gets exactly one answer and no message costs more than
itself:
- `read_messages` frames the stream with dcopilot.lsp.framing (capped header lines and lengths); malformed JSON gets
  ParseError (-32700, id null), a body that is not a JSON-RPC 2.0 object gets InvalidRequest (-32600), an
  oversized frame is answered and skipped, invalid UTF-8 is replaced by U+FFFD (the message is kept). An
  exception while handling one message is logged and, for a request, answered with InternalError.
- `dispatch` answers requests before `initialize` with ServerNotInitialized (-32002) and unknown methods
  with MethodNotFound (a debug line), both before params are looked at, and answers a request that pygls
  would structure as a notification (dropping its id).
- `DcopilotProtocol` answers a second `initialize` and requests after `shutdown` with InvalidRequest, invalid
  params with InvalidParams (-32602); checks the session token in `initialize` when a listener (dcopilot.lsp.listen)
  asks for one; ends only its connection on `exit` when it is one of several; and keeps document text out of
  pygls' workspace (the store in dcopilot.lsp.documents is the only copy).
Once the client has gone (EOF on its input, or a write that fails with a broken pipe), replies that finish
late are dropped with a debug line instead of pygls' ERROR and traceback per reply.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

from dcopilot.lsp.framing import MAX_MESSAGE_BYTES, Framer, Oversized
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
    JsonRpcParseError,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

log = logging.getLogger("dcopilot.lsp")
_pygls_log = logging.getLogger("pygls.protocol.json_rpc")

# Expected outcomes, not faults: the document moved on under an edit; a newer request superseded this one.
EXPECTED_ERRORS = {types.LSPErrorCodes.ContentModified.value, types.LSPErrorCodes.RequestCancelled.value}
CANCEL_REQUEST = "$/cancelRequest"
AUTH_FAILED = -32001  # a server error code (JSON-RPC reserves -32000..-32099 for these)
MAX_UNREAD_BYTES = 2 * MAX_MESSAGE_BYTES  # replies queued for a socket client that does not read them
# Writes still in flight: the event loop keeps only weak references to tasks, so one could vanish mid-write.
_PENDING_WRITES: set[asyncio.Future] = set()


def valid_id(msg_id: Any) -> bool:
    """LSP ids are integers or strings (JSON-RPC's null is for replies to unreadable requests only)."""
    return isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool))


class _Unusable:
    """A message that could not be structured; a request among them is answered with `error`."""

    def __init__(self, msg_id: Any, error: JsonRpcException, is_request: bool):
        self.msg_id = msg_id if valid_id(msg_id) else None
        self.error = error
        self.is_request = is_request


class DcopilotProtocol(LanguageServerProtocol):
    client_gone = False  # set on EOF or a broken pipe: from then on nothing is written
    # Set by dcopilot.lsp.listen: `initialize` must carry it (initializationOptions.token).
    auth_token: str | None = None
    # Set by dcopilot.lsp.listen for a connection: `exit` (or a failed authentication) ends the connection, not the
    # process.
    on_close: Callable[[], None] | None = None
    initialize_seen = False

    def client_left(self, why: str) -> None:
        if not self.client_gone:
            self.client_gone = True
            log.debug("client gone (%s): late replies are dropped", why)

    # Replaces pygls' _send_data: that one logs an ERROR per write after the client quit, drops a reply it
    # cannot encode (a request then never gets its answer) and counts str characters for Content-Length.
    def _send_data(self, data):
        if not data:
            return
        if self.client_gone:
            what = data.get("id", data.get("method")) if isinstance(data, dict) else getattr(data, "id", None)
            log.debug("dropped a late message (%s): the client has gone", what)
            return
        if self.writer is None:
            log.debug("no writer: message dropped")
            return
        try:
            body = json.dumps(data, default=self._serialize_message).encode("utf-8")
        except (RecursionError, ValueError, TypeError, OverflowError) as exc:
            msg_id = data.get("id") if isinstance(data, dict) else getattr(data, "id", None)
            is_reply = not ((isinstance(data, dict) and "method" in data) or hasattr(data, "method"))
            log.warning(
                "a message could not be encoded (%s); %s",
                type(exc).__name__,
                "answering with InternalError" if is_reply and valid_id(msg_id) else "dropped",
            )
            if is_reply and valid_id(msg_id):
                why = f"the reply cannot be encoded: {type(exc).__name__}"
                error = {"code": JsonRpcInternalError.CODE, "message": why}
                reply = {"jsonrpc": "2.0", "id": msg_id, "error": error}
                body = json.dumps(reply).encode("utf-8")
            else:
                return
        _pygls_log.info("Sending data: %s", body)  # as pygls does: its arguments are hidden unless tracing
        frame = b"Content-Length: %d\r\n\r\n" % len(body) + body
        res = self.writer.write(frame)
        if inspect.isawaitable(res):
            task = asyncio.ensure_future(res)
            _PENDING_WRITES.add(task)
            task.add_done_callback(_PENDING_WRITES.discard)

    def handle_message(self, message):
        # Replaces pygls' handle_message for what it drops silently or answers wrongly; the rest goes to it.
        if isinstance(message, _Unusable):
            if message.is_request:
                _error_reply(self, message.msg_id, message.error)
            else:
                log.warning("dropped a notification or response that does not validate: %s", message.error)
            return
        method = getattr(message, "method", None)
        is_request = method is not None and hasattr(message, "id")
        if method is None:  # a response to a request of ours
            super().handle_message(message)
            return
        if method == types.INITIALIZE:
            if self.initialize_seen:
                _error_reply(self, message.id, JsonRpcInvalidRequest("initialize was already received"))
                return
            if not self._authenticated(message.params):
                _error_reply(
                    self,
                    message.id,
                    JsonRpcException(
                        "authentication failed: initializationOptions.token must be the contents of the server's "
                        "token file",
                        code=AUTH_FAILED,
                    ),
                )
                log.warning("a connection failed authentication; closing it")
                if self.on_close is not None:
                    self.on_close()
                return
            self.initialize_seen = True
        if self._shutdown and method != types.EXIT and is_request:
            _error_reply(self, message.id, JsonRpcInvalidRequest("server is shut down"))
            return
        super().handle_message(message)

    def known(self, method: str) -> bool:
        return method == CANCEL_REQUEST or method in self.fm.builtin_features or method in self.fm.features

    def _authenticated(self, params) -> bool:
        if self.auth_token is None:
            return True
        options = getattr(params, "initialization_options", None)
        token = options.get("token") if isinstance(options, dict) else None
        if token is None and isinstance(options, dict) and isinstance(options.get("dcopilot"), dict):
            token = options["dcopilot"].get("token")
        # Constant time: the comparison must not tell a caller how much of a guess was right.
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.auth_token.encode())

    # Replaces pygls' cancel handler, which raises TypeError on an unhashable id (an object or array) and
    # warns on ids that already finished (normal: the reply and the cancel crossed).
    def _handle_cancel_notification(self, msg_id):
        if not valid_id(msg_id):
            log.debug("$/cancelRequest with an invalid id: ignored")
            return
        future = self._request_futures.pop(msg_id, None)
        if future is None:
            log.debug("$/cancelRequest for %r, which is not running", msg_id)
        elif future.cancel():
            log.debug("cancelled request %r", msg_id)

    def _send_handler_result(self, future, *, msg_id):
        # Replaces pygls' reply path for handler errors: it logs every JsonRpcException at ERROR with a
        # traceback (ours are answers: ContentModified, RequestCancelled, ...) and puts the traceback of any
        # other exception into error.data, which the client shows to the user.
        exc = None if future.cancelled() else future.exception()
        if exc is None:
            super()._send_handler_result(future, msg_id=msg_id)
            return
        self._request_futures.pop(msg_id, None)
        if isinstance(exc, JsonRpcException):
            level = logging.DEBUG if exc.code in EXPECTED_ERRORS else logging.INFO
            log.log(level, "request %s answered with error %d: %s", msg_id, exc.code, exc.message)
            self._send_response(msg_id, error=exc.to_response_error())
            return
        log.error("request %s failed: %s: %s", msg_id, type(exc).__name__, exc, exc_info=exc)
        _error_reply(self, msg_id, JsonRpcInternalError(f"internal error: {type(exc).__name__}"))

    # Replace pygls' built-in didOpen/didChange/didClose, which keep a second copy of every document in its
    # workspace (one str per line): the store in DcopilotServer is the only copy, so only forward.
    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params):
        yield self.fm.features[types.TEXT_DOCUMENT_DID_OPEN], (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params):
        yield self.fm.features[types.TEXT_DOCUMENT_DID_CHANGE], (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params):
        yield self.fm.features[types.TEXT_DOCUMENT_DID_CLOSE], (params,), None

    # Replaces pygls' exit, which exits the process: on a shared listener it must end one connection only.
    @lsp_method(types.EXIT)
    def lsp_exit(self, *args):
        if self.on_close is None:
            return (yield from super().lsp_exit(*args))
        self.client_left("exit")
        self.on_close()
        return None


def converter():
    """lsprotocol's converter, but custom messages keep plain JSON params (pygls' default turns them into
    namedtuples, renaming keys that are not identifiers); dcopilot.lsp.protocol decodes them with msgspec."""
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
    # Built here, not by pygls: JSON-RPC wants `"id": null` for unreadable requests (pygls' converter drops
    # None fields), and error.data never carries a traceback.
    proto._send_data(
        {
            "jsonrpc": "2.0",
            "id": msg_id if valid_id(msg_id) else None,
            "error": {"code": exc.code, "message": exc.message},
        }
    )


def _check_envelope(data: Any) -> JsonRpcException | None:
    """Why `data` is not a JSON-RPC 2.0 request, notification or response (None when it is one)."""
    if not isinstance(data, dict):
        return JsonRpcInvalidRequest("not a JSON-RPC 2.0 request or notification")
    if data.get("jsonrpc") != "2.0":
        return JsonRpcInvalidRequest('"jsonrpc" must be "2.0"')
    if "id" in data and not valid_id(data["id"]) and not (data["id"] is None and "error" in data):
        return JsonRpcInvalidRequest("id must be a string or an integer")
    if "method" in data:
        if not isinstance(data["method"], str):
            return JsonRpcInvalidRequest("method must be a string")
    elif "id" not in data or ("result" not in data and "error" not in data):
        return JsonRpcInvalidRequest("not a JSON-RPC 2.0 request or notification")
    return None


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]')


def top_level_id(text: str) -> Any:
    """The "id" member of a JSON object too deeply nested for json.loads, found by walking its strings and
    brackets at C speed (None when absent or not a valid id)."""
    depth = 0
    decoder = json.JSONDecoder()
    for token in _TOKEN.finditer(text):
        t = token.group()
        if t in "{[":
            depth += 1
        elif t in "}]":
            depth -= 1
        elif depth == 1 and t == '"id"':
            rest = text[token.end() :].lstrip()
            if rest.startswith(":"):
                try:
                    value = decoder.raw_decode(rest[1:].lstrip())[0]
                except (ValueError, RecursionError):
                    return None
                return value if valid_id(value) else None
    return None


def dispatch(proto: DcopilotProtocol, body: bytes) -> None:
    """Decode one message body and hand it to the protocol; every malformed request gets an error reply."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("message body is not valid UTF-8; invalid bytes replaced by U+FFFD")
        text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError as exc:
        log.warning("malformed JSON-RPC message: %s", str(exc)[:200])
        _error_reply(proto, None, JsonRpcParseError(f"parse error: {str(exc)[:200]}"))
        return
    except RecursionError:
        # Valid JSON nested deeper than Python parses: still a request, answered under its own id.
        msg_id = top_level_id(text)
        log.warning("message %s nests too deeply to parse", msg_id)
        _error_reply(proto, msg_id, JsonRpcInvalidRequest("message nests too deeply"))
        return
    problem = _check_envelope(data)
    if problem is not None:
        msg_id = data.get("id") if isinstance(data, dict) else None
        looks_like_reply = isinstance(data, dict) and "method" not in data and ("result" in data or "error" in data)
        if not looks_like_reply:
            _error_reply(proto, msg_id, problem)
        else:
            log.warning("dropped a response that is not JSON-RPC 2.0: %s", problem.message)
        return
    is_request = "method" in data and "id" in data
    if not proto.initialize_seen and data.get("method") not in (types.INITIALIZE, types.EXIT) and "method" in data:
        # LSP: requests before initialize get ServerNotInitialized (before their params are looked at: nothing
        # is served to a connection that has not authenticated); notifications are dropped.
        if is_request:
            _error_reply(proto, data["id"], JsonRpcServerNotInitialized("send initialize first"))
        else:
            log.debug("notification %s before initialize: dropped", data["method"])
        return
    if "method" in data and not proto.known(data["method"]):
        # Clients probe optional methods: an expected answer, not a fault (pygls logs it at ERROR), and
        # MethodNotFound even when the params would not validate for the standard method of that name.
        log.debug("unknown method %s", data["method"])
        if is_request:
            _error_reply(proto, data["id"], JsonRpcMethodNotFound(f"method not found: {data['method']}"))
        return
    try:
        message = proto.structure_message(data)
    except JsonRpcException as exc:
        message = _Unusable(data.get("id"), exc, is_request)
    except RecursionError:
        message = _Unusable(data.get("id"), JsonRpcInvalidRequest("message nests too deeply"), is_request)
    if is_request and not isinstance(message, _Unusable) and not hasattr(message, "id"):
        # pygls structures a request for a notification method as that notification and drops its id: the
        # caller would wait forever.
        message = _Unusable(data["id"], JsonRpcInvalidRequest(f"{data['method']} is a notification: no id"), True)
    try:
        proto.handle_message(message)
    except Exception as exc:  # one message's fault must not reach the read loop (and end the connection)
        log.error("handling %s failed: %s: %s", data.get("method", "a response"), type(exc).__name__, exc, exc_info=exc)
        if is_request and data["id"] not in proto._request_futures:
            _error_reply(proto, data["id"], JsonRpcInternalError(f"internal error: {type(exc).__name__}"))


async def read_messages(read_some, proto: DcopilotProtocol, stop: threading.Event | None = None) -> None:
    """Frames from `read_some` (async, b"" at EOF) dispatched one by one until EOF or `stop`."""
    framer = Framer(read_some)
    try:
        while stop is None or not stop.is_set():
            frame = await framer.next()
            if frame is None:
                return  # EOF: the client went away
            if isinstance(frame, Oversized):
                log.warning("skipped a message declaring %s bytes (cap %d)", frame.declared, MAX_MESSAGE_BYTES)
                _error_reply(proto, None, JsonRpcInvalidRequest(f"message over {MAX_MESSAGE_BYTES} bytes"))
                continue
            try:
                dispatch(proto, frame)
            except Exception as exc:  # dispatch answers its own faults; this is the last line of defence
                log.error("message dropped: %s: %s", type(exc).__name__, exc, exc_info=exc)
    finally:
        # EOF (or the loop ends): requests still running must not write to a client that is no longer there.
        proto.client_left("end of input")


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


class GuardedWriter:
    """A writer that marks the client gone when a write fails instead of raising: pygls would log an ERROR
    with a traceback for it, and again for every reply after it."""

    def __init__(self, inner, proto: DcopilotProtocol, on_broken=lambda: None):
        self.inner = inner
        self.proto = proto
        self.on_broken = on_broken

    def write(self, data: bytes):
        if self.proto.client_gone:
            return None
        queued = getattr(getattr(self.inner, "transport", None), "get_write_buffer_size", lambda: 0)()
        if queued > MAX_UNREAD_BYTES:
            # A socket client that sends requests but never reads the replies would make them pile up here
            # without bound; it is disconnected instead (a stdio client that stops reading blocks only itself).
            log.warning("the client left %d bytes of replies unread; closing its connection", queued)
            self.proto.client_left("replies unread")
            self.on_broken()
            return None
        try:
            result = self.inner.write(data)
            flush = getattr(self.inner, "flush", None)
            if flush is not None:
                flush()
            return result
        except (BrokenPipeError, ConnectionResetError, ValueError, OSError) as exc:  # ValueError: closed file
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
    if sys.__stdout__ is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def serve_stdio(server) -> int:
    """One client on stdin/stdout; the process ends with it (`exit`, or EOF)."""
    stop = threading.Event()
    server._stop_event = stop
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer
    sys.stdout = sys.stderr  # a stray print() anywhere must not corrupt the LSP stream
    server.protocol.set_writer(GuardedWriter(out, server.protocol, _discard_stdout))

    async def main():
        await read_messages(_threaded_reader(stdin), server.protocol, stop)

    return run(server.options.trace, main, [server])


def _threaded_reader(stream):
    """An async read_some over a blocking stream, read on a daemon thread: a read blocked in a pool thread
    would hold the process at exit. os.read on the descriptor, not the buffered file, whose lock a daemon thread
    would still hold at interpreter shutdown (a fatal error); it returns what is available, so each message is
    handled on arrival."""
    loop = asyncio.get_running_loop()
    fd = stream.fileno()
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)  # bounded: a fast writer waits for the reader

    def pump():
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except (OSError, ValueError):
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(chunks.put(chunk), loop).result()
            except RuntimeError:  # the loop has closed: the server is exiting
                return
            if not chunk:
                return

    threading.Thread(target=pump, name="dcopilot-stdin", daemon=True).start()
    return chunks.get


def run(trace: bool, main, servers, finish=lambda: None) -> int:
    """asyncio.run(main()), then every session's service closed; the exit code of `exit` (0 after shutdown)."""
    quiet_pygls(trace)
    code = 0
    try:
        asyncio.run(main())
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a reason to stop, e.g. the socket is taken
            log.error("%s", exc.code)
        code = exc.code if isinstance(exc.code, int) else 1 if exc.code else 0
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        finish()
        for server in servers:
            server.service.close()
            server.shutdown()
    return code
