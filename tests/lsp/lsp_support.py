"""Helpers shared by the language-server tests (a uniquely named module: every test folder has a conftest.py).

How to start the real `dcopilot serve` subprocess, and a tiny real checkpoint for the engine backend.
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


CODE = [
    "def add(a, b):\n    return a + b\n\n\nclass Point:\n    def __init__(self, x, y):\n        self.x = x\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n    else:\n        continue\n",
    "import os\nimport sys\n\npath = os.path.join(sys.argv[1], 'out.txt')\n"
    "with open(path) as f:\n    data = f.read()\n",
] * 20


def write_tiny_checkpoint(out: Path, seed: int = 0, canvas_length: int = 24, steps: int = 8) -> Path:
    """A random embedded-layout checkpoint written by the engine's own writer: real safetensors, tokenizer and
    config files, so `dcopilot serve` takes the real load/infill/edit path. Its text is random."""
    import dataclasses

    import torch
    from dcopilot.engine.runtime.model import DiffusionGemma, init_weights
    from dcopilot.engine.tasks.layout import fim_specials
    from dcopilot.engine.training.bpe import train_bpe
    from dcopilot.engine.training.train import ModelShape, TrainConfig, default_generation, write_checkpoint

    tok = train_bpe(CODE, vocab_size=320, min_frequency=1)
    ids = fim_specials(tok)
    shape = ModelShape(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_experts=4,
        top_k_experts=2,
        num_hidden_layers=2,
        full_every=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_global_key_value_heads=1,
        head_dim=16,
        global_head_dim=16,
        sliding_window=64,
    )
    torch.manual_seed(seed)
    model = DiffusionGemma(shape.text_config(ids))
    init_weights(model, std=0.2, generator=torch.Generator().manual_seed(seed))
    cfg = TrainConfig(canvas_length=canvas_length, pinned_suffix_tokens=4, prompt_lens=(160,))
    generation = dataclasses.replace(default_generation(ids), max_denoising_steps=steps)
    write_checkpoint(out, model, tok, cfg, {}, generation)
    return out
