"""A minimal JSON-RPC client over the real server's stdio, able to send bytes no well-behaved client would.

pytest-lsp drives the well-formed protocol; this drives the bad input (malformed JSON, invalid params,
unknown methods, storms) and reads every reply, so a test can assert each request got exactly one answer.
"""

import json
import queue
import subprocess
import threading
import time


class RawClient:
    def __init__(self, cmd: list[str], env: dict[str, str], stderr=subprocess.DEVNULL, cwd=None):
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=cwd
        )
        self._start(self.proc.stdout, self.proc.stdin)

    def _start(self, rfile, wfile) -> None:
        self.rfile, self.wfile = rfile, wfile
        self.inbox: queue.Queue = queue.Queue()
        self.responses: dict = {}
        self.notifications: list[dict] = []
        self.log: list[dict] = []  # every message from the server, in arrival order
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.rfile
        while True:
            length = None
            while True:
                try:
                    line = out.readline()
                except OSError:  # the socket was reset
                    line = b""
                if not line:
                    self.inbox.put(None)
                    return
                if line.strip() == b"":
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = out.read(length)
            if len(body) < length:
                self.inbox.put(None)
                return
            self.inbox.put(json.loads(body))

    def send_bytes(self, body: bytes) -> None:
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: headers and all, or none."""
        self.wfile.write(data)
        self.wfile.flush()

    def send(self, message: dict) -> None:
        self.send_bytes(json.dumps(message).encode())

    def request_id(self) -> int:
        self._next += 1
        return self._next

    def request(self, method: str, params=None, timeout: float = 30.0) -> dict:
        rid = self.request_id()
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return self.wait(rid, timeout)

    def notify(self, method: str, params=None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def pump(self, timeout: float) -> dict | None:
        """Take one message off the wire; answer server->client requests (progress tokens, applyEdit)."""
        message = self.inbox.get(timeout=timeout)
        if message is None:
            raise EOFError("server exited")
        self.log.append(message)
        if "method" in message and "id" in message:
            result = {"applied": True} if message["method"] == "workspace/applyEdit" else None
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
        elif "method" in message:
            self.notifications.append(message)
        else:
            self.responses.setdefault(message.get("id"), []).append(message)
        return message

    def wait(self, rid, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while rid not in self.responses:
            self.pump(max(0.01, deadline - time.monotonic()))
        return self.responses[rid][0]

    def wait_for(self, predicate, timeout: float = 30.0) -> dict:
        """The first message (already received or arriving) for which `predicate` is true."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.log[seen:]:
                if predicate(message):
                    return message
            seen = len(self.log)
            self.pump(max(0.01, deadline - time.monotonic()))

    def wait_status(self, state: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for n in self.notifications:
                if n["method"] == "dcopilot/status" and n["params"]["state"] == state:
                    return n["params"]
            self.pump(max(0.01, deadline - time.monotonic()))

    def initialize(self, encodings=None, options=None, caps=None) -> dict:
        caps = dict(caps or {})
        if encodings:
            caps["general"] = {"positionEncodings": encodings}
        reply = self.request(
            "initialize", {"processId": None, "rootUri": None, "capabilities": caps, "initializationOptions": options}
        )
        self.notify("initialized", {})
        return reply

    def close(self) -> int:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit")
            return self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            return self.proc.wait()


class SocketClient(RawClient):
    """The same client over a TCP or Unix socket of a server started elsewhere; `proc` is that server."""

    def __init__(self, sock, proc):
        self.sock = sock
        self.proc = proc
        self._start(sock.makefile("rb"), sock.makefile("wb"))

    def closed_by_server(self, timeout: float = 10.0) -> bool:
        """True once the server has closed this connection (everything it sent before is still read)."""
        try:
            while True:
                self.pump(timeout)
        except EOFError:
            return True
        except queue.Empty:
            return False

    def close(self) -> int | None:
        """shutdown + exit ends this session only; the server keeps running (None: no exit code to give)."""
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit")
            self.closed_by_server()
        except Exception:
            pass
        self.sock.close()
        return None
