"""Helpers shared by the language-server tests (a uniquely named module: every test folder has a conftest.py).

How to start the real `dcopilot serve` subprocess.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
DCOPILOT = str(Path(sys.executable).with_name("dcopilot"))
SERVE = [DCOPILOT, "serve"] if Path(DCOPILOT).exists() else [sys.executable, "-m", "dcopilot.copilot", "serve"]


def server_env(deterministic: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOPILOT_")}
    env.update(
        OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT)]), XDG_CONFIG_HOME=str(HERE / "no-config")
    )
    if deterministic:
        env["DCOPILOT_TEST_SERVICE"] = "det_backend:make"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    """`dcopilot serve --tcp PORT` (or `--unix PATH`) as a subprocess with its own runtime directory."""

    def __init__(self, runtime: Path, unix: Path | None = None, stderr=subprocess.DEVNULL, **env: str):
        self.runtime = runtime
        self.unix = unix
        self.port = None if unix else free_port()
        flag = ["--unix", str(unix)] if unix else ["--tcp", str(self.port)]
        self.proc = subprocess.Popen(
            [*SERVE, *flag],
            env=server_env(XDG_RUNTIME_DIR=str(runtime), **env),
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        if unix:
            wait_for(lambda: unix.exists() or self.proc.poll() is not None, "the socket")
        else:
            wait_for(lambda: self.token_file.exists() or self.proc.poll() is not None, "the token file")
        assert self.proc.poll() is None, "the server exited at start"

    @property
    def token_file(self) -> Path:
        return self.runtime / "dcopilot" / f"tcp-{self.port}.token"

    @property
    def token(self) -> str:
        return self.token_file.read_text()

    def connect(self) -> socket.socket:
        if self.unix:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(self.unix))
            return sock
        return socket.create_connection(("127.0.0.1", self.port), timeout=None)

    def client(self, authenticate: bool = True, **init):
        """A connected SocketClient, initialized (with the token over TCP) unless `authenticate` is False."""
        from rawclient import SocketClient

        client = SocketClient(self.connect(), self.proc)
        if authenticate:
            options = dict(init.pop("options", None) or {})
            if not self.unix:
                options["token"] = self.token
            reply = client.initialize(options=options, **init)
            assert "result" in reply, reply
        return client

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()
