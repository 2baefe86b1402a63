"""Shared-daemon transports: TCP on the loopback interface and a Unix domain socket.

Threat model (docs/lsp.md): other local users, and web pages in the user's browser (which can make requests
to 127.0.0.1 ports), must not read documents, take replies or stop the server. So:
- every connection is its own session: its own protocol, document store, settings and scheduler; only the
  model (the `CompletionService`) is shared, with request keys namespaced per session so one session never
  cancels another's work; one connection's end (EOF, `exit`, a failed login) ends that session only;
- over TCP a connection must prove it belongs to the user who started the server: `initialize` carries
  `initializationOptions.token`, the contents of a file only that user can read (0600 in a 0700 directory
  under $XDG_RUNTIME_DIR); a wrong or missing token is answered with an error and the connection closed, and
  a connection that does not initialize within LOGIN_TIMEOUT_S is closed;
- a Unix socket is created 0600 (the file system does the authentication) and the peer's uid is checked too;
- at most MAX_SESSIONS connections at a time; the rest are closed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import signal
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import msgspec
from dcopilot.lsp.service import CompletionRequest, CompletionService, EditRequest, EditResult, Status, Suggestion
from dcopilot.lsp.transport import GuardedWriter, read_messages, run

log = logging.getLogger("dcopilot.lsp")

LOGIN_TIMEOUT_S = 10.0
MAX_SESSIONS = 16


class SharedService:
    """One model for every session: started once, closed once, its status fanned out to each session."""

    def __init__(self, inner: CompletionService):
        self.inner = inner
        self._listeners: dict[int, Callable[[Status], None]] = {}
        self._started = False

    def session(self, sid: int) -> SessionService:
        return SessionService(self, sid)

    def _fan_out(self, status: Status) -> None:  # any thread
        for listener in list(self._listeners.values()):
            listener(status)

    def close(self) -> None:
        self.inner.close()


class SessionService:
    """A session's view of the shared service (a `CompletionService`): its request keys carry the session id,
    and closing it detaches the session instead of stopping the model."""

    def __init__(self, shared: SharedService, sid: int):
        self.shared = shared
        self.sid = sid

    def _key(self, key: str) -> str:
        return f"s{self.sid}:{key}"

    async def complete(self, req: CompletionRequest) -> list[Suggestion]:
        return await self.shared.inner.complete(msgspec.structs.replace(req, key=self._key(req.key)))

    async def edit(self, req: EditRequest) -> EditResult:
        return await self.shared.inner.edit(msgspec.structs.replace(req, key=self._key(req.key)))

    def cancel(self, request_key: str) -> None:
        self.shared.inner.cancel(self._key(request_key))

    def status(self) -> Status:
        return self.shared.inner.status()

    def start(self, on_status: Callable[[Status], None]) -> None:
        self.shared._listeners[self.sid] = on_status
        if not self.shared._started:
            self.shared._started = True
            self.shared.inner.start(self.shared._fan_out)
        else:
            on_status(self.shared.inner.status())

    def close(self) -> None:
        self.shared._listeners.pop(self.sid, None)


def runtime_dir() -> Path:
    """A directory only this user can enter: $XDG_RUNTIME_DIR/dcopilot, else ~/.cache/dcopilot/run."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "dcopilot" if base else Path.home() / ".cache" / "dcopilot" / "run"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if info.st_uid != os.getuid() or not path.is_dir() or path.is_symlink():
        raise PermissionError(f"{path} is not a directory owned by this user")
    os.chmod(path, 0o700)
    return path


def token_path(port: int) -> Path:
    return runtime_dir() / f"tcp-{port}.token"


def write_token(path: Path) -> str:
    """A fresh random token in a new file readable by this user only (an old file is replaced, never reused)."""
    token = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


class _Sessions:
    """The live sessions of one listener; each connection is served by `serve` until it ends."""

    def __init__(self, make_server, service: CompletionService, token: str | None):
        self.make_server = make_server
        self.shared = SharedService(service)
        self.token = token
        self.live: dict[int, object] = {}
        self._ids = itertools.count(1)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.live) >= MAX_SESSIONS:
            log.warning("connection refused: %d sessions already", MAX_SESSIONS)
            writer.close()
            return
        sid = next(self._ids)
        server = self.make_server(self.shared.session(sid))
        proto = server.protocol
        proto.auth_token = self.token
        ended = asyncio.Event()
        proto.on_close = ended.set
        proto.set_writer(GuardedWriter(writer, proto, ended.set))
        self.live[sid] = server
        log.info("session %d connected", sid)

        async def read_some() -> bytes:
            try:
                return await reader.read(1 << 20)
            except (ConnectionError, OSError):
                return b""

        reading = asyncio.ensure_future(read_messages(read_some, proto))
        ending = asyncio.ensure_future(ended.wait())
        try:
            done, _ = await asyncio.wait(
                {reading, ending}, timeout=LOGIN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if not done and not proto.initialize_seen:
                log.warning("session %d did not initialize within %g s; closing it", sid, LOGIN_TIMEOUT_S)
            elif not done:
                await asyncio.wait({reading, ending}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass  # the listener is closing (a signal): the session ends like any other
        finally:
            reading.cancel()
            ending.cancel()
            proto.client_left("session ended")
            for future in list(proto._request_futures.values()):
                future.cancel()
            server.service.close()
            server.shutdown()
            del self.live[sid]
            writer.close()
            log.info("session %d ended", sid)


def _peer_is_us(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None or not hasattr(socket, "SO_PEERCRED"):
        return True  # no peer credentials here: the socket's 0600 mode is the check
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid == os.getuid()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def serve_tcp(make_server, service: CompletionService, port: int, host: str = "127.0.0.1", trace: bool = False) -> int:
    """Sessions over TCP on the loopback interface, each authenticated by the token file; runs until a signal."""
    if host not in ("127.0.0.1", "::1"):
        raise ValueError("dcopilot listens on the loopback interface only")
    sessions = _Sessions(make_server, service, token=None)
    paths: list[Path] = []

    async def main():
        tcp = await asyncio.start_server(sessions.serve, host, port)
        bound = tcp.sockets[0].getsockname()[1]
        path = token_path(bound)
        sessions.token = write_token(path)
        paths.append(path)
        log.info("listening on %s:%d; clients authenticate with the token in %s", host, bound, path)
        async with tcp:
            await _until_signalled()

    def finish():
        for path in paths:
            path.unlink(missing_ok=True)
        sessions.shared.close()

    return run(trace, main, [], finish=finish)


def serve_unix(make_server, service: CompletionService, path: str, trace: bool = False) -> int:
    """Sessions over a Unix domain socket created 0600; runs until a signal."""
    sock_path = Path(path)
    sessions = _Sessions(make_server, service, token=None)
    owned: list[Path] = []

    async def connection(reader, writer):
        if not _peer_is_us(writer):
            log.warning("connection from another user refused")
            writer.close()
            return
        await sessions.serve(reader, writer)

    async def main():
        if sock_path.is_socket():
            try:  # a live server answers; a stale file from a crashed one does not
                _r, w = await asyncio.open_unix_connection(str(sock_path))
                w.close()
                raise SystemExit(f"dcopilot: another server is listening on {sock_path}")
            except (ConnectionRefusedError, FileNotFoundError):
                sock_path.unlink(missing_ok=True)
        sock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        old = os.umask(0o177)  # the socket is born 0600: no window in which another user could connect
        try:
            unix = await asyncio.start_unix_server(connection, str(sock_path))
        finally:
            os.umask(old)
        os.chmod(sock_path, 0o600)
        owned.append(sock_path)
        log.info("listening on %s", sock_path)
        async with unix:
            await _until_signalled()

    def finish():
        for path in owned:  # only a socket this process created: never another server's
            path.unlink(missing_ok=True)
        sessions.shared.close()

    return run(trace, main, [], finish=finish)
