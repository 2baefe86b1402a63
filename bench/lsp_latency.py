"""Replay a typing session against the real `dcopilot serve` and report request-to-response latency.

A real source file is typed into the editor character by character with human timings (log-normal gaps
around 140 ms, longer pauses after line ends and punctuation, seeded). After every keystroke the "editor"
sends didChange and an automatic inlineCompletion request without waiting for the previous answer, as
VS Code and Neovim do. When the suggestion on screen matches what comes next in the file, the bench accepts
it (Tab: didShow, didAccept, one edit inserting it), so cache and acceptance paths are exercised.

Prints client-measured p50/p95 request-to-response latency, the server's own overhead (from dcopilot/stats:
latency minus debounce and model time; target p95 < 5 ms), cache-hit rate and cancellations.

    python bench/lsp_latency.py                       # embedded model (engine/embedded), CPU
    python bench/lsp_latency.py --model DIR --device cuda
    python bench/lsp_latency.py --deterministic       # a no-model backend: server overhead alone
    python bench/lsp_latency.py --json OUT.json       # also write the figures as JSON (bench/gpu_check.py)

Other settings reach the server through DCOPILOT_* environment variables (the bench passes its environment on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Client:
    """Just enough JSON-RPC over the server's stdio: requests are futures, replies are matched by id."""

    def __init__(self, proc: asyncio.subprocess.Process):
        assert proc.stdin is not None and proc.stdout is not None, "start the server with stdin/stdout pipes"
        self.proc = proc
        self.stdin, self.stdout = proc.stdin, proc.stdout
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.statuses: list[dict] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        out = self.stdout
        while True:
            length = 0
            while (line := await out.readline()) not in (b"\r\n", b"\n"):
                if not line:
                    return
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            message = json.loads(await out.readexactly(length))
            if "id" in message and "method" not in message:
                future = self.pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result((time.perf_counter(), message))
            elif message.get("method") == "dcopilot/status":
                self.statuses.append(message["params"])

    def _send(self, message: dict) -> None:
        body = json.dumps(message).encode()
        self.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, method: str, params) -> asyncio.Future:
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return future

    def notify(self, method: str, params) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})


def keystroke_gaps(text: str, rng: random.Random, speed: float) -> list[float]:
    """Seconds before each character: log-normal around 140 ms, pauses after line ends and punctuation."""
    gaps = []
    for i in range(len(text)):
        gap = rng.lognormvariate(-2.0, 0.45)  # median ~135 ms
        prev = text[i - 1] if i else ""
        if prev == "\n":
            gap += rng.uniform(0.3, 1.2)  # reading / thinking at a new line
        elif prev in ".,:;()[]{}" and rng.random() < 0.3:
            gap += rng.uniform(0.1, 0.5)
        gaps.append(gap / speed)
    return gaps


def position(text: str) -> dict:
    """LSP position (UTF-16) of the end of `text`."""
    line = text.count("\n")
    last = text.rsplit("\n", 1)[-1]
    return {"line": line, "character": len(last.encode("utf-16-le")) // 2}


async def session(args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.deterministic:
        env.update(
            DCOPILOT_TEST_SERVICE="det_backend:make",
            PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "lsp"), str(ROOT)]),
        )
    if args.model:
        env["DCOPILOT_MODEL_PATH"] = args.model
    env["DCOPILOT_MODEL_DEVICE"] = args.device
    exe = Path(sys.executable).with_name("dcopilot")
    cmd = [str(exe), "serve"] if exe.exists() else [sys.executable, "-m", "dcopilot.copilot", "serve"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env
    )
    client = Client(proc)
    started = time.perf_counter()
    await client.request(
        "initialize",
        {"processId": os.getpid(), "rootUri": None, "capabilities": {}, "initializationOptions": {"candidates": 1}},
    )
    init_ms = (time.perf_counter() - started) * 1000
    client.notify("initialized", {})
    while not client.statuses or client.statuses[-1]["state"] == "loading":
        await asyncio.sleep(0.05)
    if client.statuses[-1]["state"] != "ready":
        raise SystemExit(f"model failed: {client.statuses[-1]['message']}")
    load_s = time.perf_counter() - started

    source = Path(args.file).read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    doc = "".join(lines[: args.context_lines])
    target = "".join(lines[args.context_lines :])[: args.keys]
    uri = Path(args.file).resolve().as_uri()
    client.notify(
        "textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": doc + "\n"}}
    )

    rng = random.Random(args.seed)
    gaps = keystroke_gaps(target, rng, args.speed)
    version, typed, shown = 1, 0, None
    records: list[tuple[float, asyncio.Future]] = []
    accepted_chars = 0

    def on_reply(future: asyncio.Future) -> None:
        nonlocal shown
        _, message = future.result()
        items = (message.get("result", {}) and message["result"].get("items")) or []
        shown = items[0] if items else None

    while typed < len(target):
        await asyncio.sleep(gaps[typed])
        rest = target[typed:]
        if (
            shown
            and len(shown["insertText"]) >= 2
            and rest.startswith(shown["insertText"])
            and shown["range"]["start"] == position(doc)
        ):
            text = shown["insertText"]  # the suggestion is what the user was about to type: Tab
            sid = shown["command"]["arguments"][0]["id"]
            client.notify("dcopilot/didShowCompletion", {"id": sid})
            client.notify("dcopilot/didAcceptCompletion", {"id": sid})
            accepted_chars += len(text)
        else:
            text = rest[0]
        pos = position(doc)
        version += 1
        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": pos, "end": pos}, "text": text}],
            },
        )
        doc += text
        typed += len(text)
        shown = None
        future = client.request(
            "textDocument/inlineCompletion",
            {"textDocument": {"uri": uri}, "position": position(doc), "context": {"triggerKind": 2}},
        )
        future.add_done_callback(on_reply)
        records.append((time.perf_counter(), future))
    await asyncio.wait([f for _, f in records], timeout=120)
    _, stats_reply = await client.request("dcopilot/stats", None)
    client.request("shutdown", None)
    client.notify("exit", None)
    await asyncio.wait_for(proc.wait(), timeout=30)

    answered, cancelled = [], 0
    for sent, future in records:
        if not future.done():
            continue
        received, message = future.result()
        if "error" in message:
            cancelled += message["error"]["code"] == -32800
        else:
            answered.append((received - sent) * 1000)
    return {
        "init_ms": init_ms,
        "load_s": load_s,
        "requests": len(records),
        "answered": answered,
        "cancelled": cancelled,
        "accepted_chars": accepted_chars,
        "typed_chars": len(target),
        "stats": stats_reply["result"],
        "status": client.statuses[-1],
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 1)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(ROOT / "lsp" / "scheduler.py"), help="real source file to type")
    parser.add_argument("--context-lines", type=int, default=40, help="lines already in the document")
    parser.add_argument("--keys", type=int, default=400, help="characters to type")
    parser.add_argument("--speed", type=float, default=1.0, help="typing speed factor (2 = twice as fast)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="", help="checkpoint dir (default: the embedded model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the server")
    parser.add_argument("--deterministic", action="store_true", help="no model: measures the server alone")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    r = asyncio.run(session(args))
    s = r["stats"]
    if args.json:
        a = r["answered"]
        figures = {k: v for k, v in r.items() if k != "answered"} | {
            "latency_p50_ms": pct(a, 0.5),
            "latency_p95_ms": pct(a, 0.95),
            "answered_count": len(a),
            "keys": args.keys,
            "speed": args.speed,
            "device": args.device,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    backend = "deterministic (no model)" if args.deterministic else f"{r['status']['model']} on {r['status']['device']}"
    a, o, m = r["answered"], s["overhead"], s["model"]
    cpu = f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs"
    lines = [
        f"machine   : {cpu}, python {platform.python_version()}, OMP_NUM_THREADS={args.threads}",
        f"backend   : {backend}",
        f"session   : {r['typed_chars']} chars of {Path(args.file).name} typed in {r['requests']} keystrokes"
        f" (seed {args.seed}, speed x{args.speed})",
        f"startup   : initialize answered in {r['init_ms']:.0f} ms; model ready after {r['load_s']:.1f} s"
        f" ({r['status']['message']})",
        f"latency   : p50 {pct(a, 0.5):.1f} ms, p95 {pct(a, 0.95):.1f} ms"
        f" (client-measured, {len(a)} answered requests, debounce included)",
        f"overhead  : p50 {o['p50Ms']} ms, p95 {o['p95Ms']} ms (server-measured: latency - debounce - model time)",
        f"model     : p50 {m['p50Ms']} ms, p95 {m['p95Ms']} ms per request ({m['count']} reached the model)",
        f"cache     : {s['answeredFromCache']} of {s['requests']} answered from cache (hit rate {s['cacheHitRate']})",
        f"cancelled : {r['cancelled']} answered RequestCancelled (superseded by a newer keystroke);"
        f" engine stopped mid-run {s['engineCancelled']} times",
        f"accepted  : {r['accepted_chars']} of {r['typed_chars']} chars came from accepted suggestions",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
