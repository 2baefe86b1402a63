"""Replay a typing session against the real `dcopilot serve`: keystroke-to-ghost-text latency and pause coverage.

A real source file is typed into the editor character by character with human timings (log-normal gaps
around 140 ms, longer pauses after line ends and punctuation, seeded). After every keystroke the "editor"
sends didChange and an automatic inlineCompletion request without waiting for the previous answer, as
VS Code and Neovim do. When the suggestion on screen matches what comes next in the file, the bench accepts
it (Tab: didShow, didAccept, one edit inserting it), so cache and acceptance paths are exercised.

Prints, per session: for every keystroke whose completion was answered (not cancelled), the time from its didChange
to the answer, p50/p95 (and the same for answers carrying a suggestion); for every pause longer than 300 ms in the
typing schedule, whether a non-empty suggestion for the text as of the pause arrived before the next keystroke,
and whether it was useful there (edit similarity >= 0.7 against what the file goes on with for as many lines) or
noise (< 0.3);
the model's time per request, the server's own overhead (dcopilot/stats; target p95 < 5 ms), prompt-cache reuse
(the server's debug log) and the load average. The gate: "open" shows every candidate (minScore -100; latency is
the pipeline's), "shipped" keeps the server's completion.min_score, "both" runs one session of each.

    python bench/lsp_latency.py                       # embedded model (engine/embedded), CPU, gate open
    python bench/lsp_latency.py --keys 300 --gate both
    python bench/lsp_latency.py --model DIR --device cuda
    python bench/lsp_latency.py --deterministic       # a no-model backend: server overhead alone
    python bench/lsp_latency.py --json OUT.json       # also write the figures as JSON (bench/gpu_check.py)

Other settings reach the server through DCOPILOT_* environment variables (the bench passes its environment on);
bench/latency_levers.py runs the session once per lever.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dcopilot.copilot.evaluate import edit_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent / "heldout"))
from metrics import NOISE_ES, USEFUL_ES  # the quality benchmark's bounds

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


PAUSE_S = 0.3  # a gap in the typing schedule longer than this is a pause: the moment ghost text can help
OPEN_GATE = -100.0  # completion.min_score that lets every candidate through (latency is the pipeline's, not the gate's)


@dataclass
class Keystroke:
    sent: float  # perf_counter when its didChange went out (its completion request follows at once)
    future: asyncio.Future  # the completion request's (received, message)
    gap_after: float = float("inf")  # scheduled seconds until the next keystroke (inf: the last one)
    next_sent: float = float("inf")  # when the next keystroke's didChange went out
    ahead: str = ""  # what the file goes on with after this keystroke (what a suggestion here should say)


def outcome(k: Keystroke) -> tuple[str, float | None, bool]:
    """(answered | cancelled | error | unanswered, latency seconds from didChange to the answer, non-empty)."""
    if not k.future.done():
        return "unanswered", None, False
    received, message = k.future.result()
    if "error" in message:
        return ("cancelled" if message["error"].get("code") == -32800 else "error"), None, False
    return "answered", received - k.sent, bool(suggestion(k))


def suggestion(k: Keystroke) -> str:
    """The first item's text of an answered request ("" when none)."""
    if not k.future.done():
        return ""
    items = (k.future.result()[1].get("result") or {}).get("items") or []
    return items[0].get("insertText") or "" if items else ""


def pause_es(text: str, ahead: str) -> float:
    """Edit similarity of a suggestion against what the file goes on with, cut to as many lines as it has."""
    lines = text.count("\n") + 1
    return edit_similarity(text, "\n".join(ahead.split("\n")[:lines]))


def summarize(keys: list[Keystroke], pause_s: float = PAUSE_S) -> dict:
    """Latency of every answered keystroke and coverage of the pauses (pure; tests/bench tables).

    A pause (gap_after > pause_s) is covered when its keystroke's answer was non-empty and arrived before the next
    keystroke: the user saw ghost text for the text as it stood while they paused. A covered pause's suggestion is
    useful or noise by its edit similarity against what the file goes on with (`pause_es`).
    """
    answered, shown, cancelled, covered, pauses, useful, noise = [], [], 0, 0, 0, 0, 0
    for k in keys:
        state, latency, nonempty = outcome(k)
        cancelled += state == "cancelled"
        if latency is not None:
            answered.append(latency * 1000)
            if nonempty:
                shown.append(latency * 1000)
        if k.gap_after > pause_s and k.gap_after != float("inf"):
            pauses += 1
            seen = bool(nonempty and latency is not None and k.sent + latency < k.next_sent)
            covered += seen
            if seen:
                es = pause_es(suggestion(k), k.ahead)
                useful += es >= USEFUL_ES
                noise += es < NOISE_ES
    return {
        "keystrokes": len(keys),
        "answered": answered,
        "shown": shown,
        "cancelled": cancelled,
        "pauses": pauses,
        "pauses_covered": covered,
        "pauses_useful": useful,
        "pauses_noise": noise,
    }


def prefix_reuse(log_text: str) -> dict:
    """Prompt-cache reuse over the session from the server's debug lines ("reused R of P prompt tokens")."""
    pairs = [(int(r), int(p)) for r, p in re.findall(r"reused (\d+) of (\d+) prompt tokens", log_text)]
    return {
        "runs": len(pairs),
        "hits": sum(r > 0 for r, _ in pairs),
        "reused_tokens": sum(r for r, _ in pairs),
        "prompt_tokens": sum(p for _, p in pairs),
    }


async def session(args, min_score: float | None = None, env_extra: dict[str, str | None] | None = None) -> dict:
    """One typing session against a fresh server; min_score None keeps the server's configured gate."""
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    if args.deterministic:
        env.update(
            DCOPILOT_TEST_SERVICE="det_backend:make",
            PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "lsp"), str(ROOT)]),
        )
    if args.model:
        env["DCOPILOT_MODEL_PATH"] = args.model
    env["DCOPILOT_MODEL_DEVICE"] = args.device
    logdir = tempfile.TemporaryDirectory(prefix="dcopilot-latency-")
    log_file = Path(logdir.name) / "server.log"
    env.setdefault("DCOPILOT_SERVER_LOG_FILE", str(log_file))
    env.setdefault("DCOPILOT_SERVER_LOG_LEVEL", "debug")
    for key, value in (env_extra or {}).items():  # None removes a variable
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    exe = Path(sys.executable).with_name("dcopilot")
    cmd = [str(exe), "serve"] if exe.exists() else [sys.executable, "-m", "dcopilot.copilot", "serve"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env
    )
    client = Client(proc)
    started = time.perf_counter()
    options: dict = {"candidates": 1}
    if min_score is not None:
        options["minScore"] = min_score
    await client.request(
        "initialize", {"processId": os.getpid(), "rootUri": None, "capabilities": {}, "initializationOptions": options}
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
    keys: list[Keystroke] = []
    accepted_chars = 0
    load_before = os.getloadavg()

    def on_reply(future: asyncio.Future) -> None:
        nonlocal shown
        _, message = future.result()
        items = (message.get("result", {}) and message["result"].get("items")) or []
        shown = items[0] if items else None

    while typed < len(target):
        gap = gaps[typed]
        if keys:
            keys[-1].gap_after = gap
        await asyncio.sleep(gap)
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
        sent = time.perf_counter()
        if keys:
            keys[-1].next_sent = sent
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
        keys.append(Keystroke(sent, future, ahead=target[typed:]))
    await asyncio.wait([k.future for k in keys], timeout=120)
    load_after = os.getloadavg()
    _, stats_reply = await client.request("dcopilot/stats", None)
    client.request("shutdown", None)
    client.notify("exit", None)
    await asyncio.wait_for(proc.wait(), timeout=30)
    reuse = prefix_reuse(log_file.read_text(errors="replace") if log_file.exists() else "")
    logdir.cleanup()
    return summarize(keys) | {
        "gate": "open"
        if min_score is not None and min_score <= OPEN_GATE
        else "shipped"
        if min_score is None
        else str(min_score),
        "init_ms": init_ms,
        "load_s": load_s,
        "requests": len(keys),
        "accepted_chars": accepted_chars,
        "typed_chars": len(target),
        "stats": stats_reply["result"],
        "status": client.statuses[-1],
        "prefix_reuse": reuse,
        "loadavg": [round(x, 2) for x in (*load_before, *load_after)],
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 1)) - 1))]


def figures(r: dict) -> dict:
    """The JSON figures of one session (bench/gpu_check.py reads latency_p50_ms, latency_p95_ms, answered_count)."""
    a, shown = r["answered"], r["shown"]
    reuse = r["prefix_reuse"]
    return {k: v for k, v in r.items() if k not in ("answered", "shown")} | {
        "latency_p50_ms": pct(a, 0.5),
        "latency_p95_ms": pct(a, 0.95),
        "answered_count": len(a),
        "shown_p50_ms": pct(shown, 0.5),
        "shown_p95_ms": pct(shown, 0.95),
        "shown_count": len(shown),
        "pause_coverage": r["pauses_covered"] / r["pauses"] if r["pauses"] else float("nan"),
        "prefix_reused_share": reuse["reused_tokens"] / reuse["prompt_tokens"]
        if reuse["prompt_tokens"]
        else float("nan"),
    }


def report(r: dict, args) -> list[str]:
    s, f = r["stats"], figures(r)
    o, m, reuse = s["overhead"], s["model"], r["prefix_reuse"]
    backend = "deterministic (no model)" if args.deterministic else f"{r['status']['model']} on {r['status']['device']}"
    gate = {
        "open": f"open (minScore {OPEN_GATE:g}: every candidate shown)",
        "shipped": "shipped (the server's min_score)",
    }
    return [
        f"--- gate {gate.get(r['gate'], r['gate'])}",
        f"backend   : {backend}",
        f"session   : {r['typed_chars']} chars of {Path(args.file).name} typed in {r['requests']} keystrokes"
        f" (seed {args.seed}, speed x{args.speed}); load average {r['loadavg'][:3]} -> {r['loadavg'][3:]}",
        f"startup   : initialize answered in {r['init_ms']:.0f} ms; model ready after {r['load_s']:.1f} s"
        f" ({r['status']['message']})",
        f"keystroke : didChange -> answer p50 {f['latency_p50_ms']:.0f} ms, p95 {f['latency_p95_ms']:.0f} ms"
        f" ({f['answered_count']} of {r['keystrokes']} keystrokes answered, {r['cancelled']} cancelled)",
        f"ghost text: didChange -> non-empty answer p50 {f['shown_p50_ms']:.0f} ms, p95 {f['shown_p95_ms']:.0f} ms"
        f" ({f['shown_count']} answers with a suggestion)",
        f"pauses    : {r['pauses_covered']} of {r['pauses']} pauses > {PAUSE_S * 1000:.0f} ms got a suggestion"
        f" before the next keystroke ({f['pause_coverage']:.0%}); {r['pauses_useful']} of them useful,"
        f" {r['pauses_noise']} noise",
        f"model     : p50 {m['p50Ms']} ms, p95 {m['p95Ms']} ms per request ({m['count']} reached the model,"
        f" engine stopped mid-run {s['engineCancelled']} times)",
        f"overhead  : p50 {o['p50Ms']} ms, p95 {o['p95Ms']} ms (server-measured: latency - debounce - model time)",
        f"prompt    : {reuse['hits']} of {reuse['runs']} engine runs reused the prompt cache;"
        f" {reuse['reused_tokens']} of {reuse['prompt_tokens']} prompt tokens reused ({f['prefix_reused_share']:.0%})",
        f"cache     : {s['answeredFromCache']} of {s['requests']} answered from the suggestion cache",
        f"accepted  : {r['accepted_chars']} of {r['typed_chars']} chars came from accepted suggestions",
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", default=str(ROOT / "lsp" / "scheduler.py"), help="real source file to type")
    p.add_argument("--context-lines", type=int, default=40, help="lines already in the document")
    p.add_argument("--keys", type=int, default=400, help="characters to type")
    p.add_argument("--speed", type=float, default=1.0, help="typing speed factor (2 = twice as fast)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="", help="checkpoint dir (default: the embedded model)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for the server (0: the server's default)")
    p.add_argument("--deterministic", action="store_true", help="no model: measures the server alone")
    p.add_argument(
        "--gate",
        choices=["open", "shipped", "both"],
        default="open",
        help="open: every candidate is shown (the pipeline's latency); shipped: the server's completion.min_score;"
        " both: one session each",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p


def main() -> None:
    args = parser().parse_args()
    by_name: dict[str, list[float | None]] = {"open": [OPEN_GATE], "shipped": [None], "both": [OPEN_GATE, None]}
    gates = by_name[args.gate]
    runs = [asyncio.run(session(args, min_score=g)) for g in gates]
    if args.json:
        out = figures(runs[0]) | {"keys": args.keys, "speed": args.speed, "device": args.device}
        out["gates"] = {r["gate"]: figures(r) for r in runs}
        args.json.write_text(json.dumps(out, indent=2))
    cpu = f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs"
    print(f"machine   : {cpu}, python {platform.python_version()}, server OMP_NUM_THREADS={args.threads or 'unset'}")
    for r in runs:
        print("\n".join(report(r, args)))


if __name__ == "__main__":
    main()
