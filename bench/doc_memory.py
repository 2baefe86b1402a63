"""Memory and reply delay of the real `dcopilot serve` holding big documents (the deterministic backend).

Two cases, each in a fresh server process: one 15 MB document of 2-character lines ("a\\n" x 7.5 M), and 50
documents of 1 MB of 2-character lines each. Reports the server's resident memory before and after (VmRSS,
after a `dcopilot/stats` round trip shows the documents are stored) and the seconds from sending didOpen to
that reply. `--root DIR` serves from another source tree (e.g. an older commit unpacked with `git archive`),
so the same script measures before and after a change.

    python bench/doc_memory.py
    python bench/doc_memory.py --root /tmp/dcopilot-old
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "lsp"))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) / 1024


def measure(root: Path, docs: list[tuple[str, str]]) -> dict:
    from rawclient import RawClient

    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOPILOT_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "lsp"), str(root)]),
        DCOPILOT_TEST_SERVICE="det_backend:make",
        XDG_CONFIG_HOME=str(ROOT / "tests" / "lsp" / "no-config"),
    )
    client = RawClient([sys.executable, "-m", "dcopilot.copilot", "serve"], env, cwd=root)  # cwd: -m imports from there
    try:
        client.initialize()
        client.wait_status("ready")
        client.request("dcopilot/stats")
        before = rss_mb(client.proc.pid)
        started = time.monotonic()
        for uri, text in docs:
            client.notify(
                "textDocument/didOpen",
                {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": text}},
            )
        client.request("dcopilot/stats", timeout=600)
        took = time.monotonic() - started
        after = rss_mb(client.proc.pid)
    finally:
        client.close()
    chars = sum(len(t) for _, t in docs)
    return {
        "documents": len(docs),
        "chars": chars,
        "rss_before_mb": round(before),
        "rss_after_mb": round(after),
        "grown_mb": round(after - before),
        "bytes_per_char": round((after - before) * 2**20 / chars, 2),
        "open_to_reply_s": round(took, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=ROOT, help="source tree to serve from (default: this one)")
    args = ap.parse_args()
    one = [("file:///bench/short_lines.txt", "a\n" * (15 * 1024 * 1024 // 2))]
    many = [(f"file:///bench/doc{i}.txt", "a\n" * (1024 * 1024 // 2)) for i in range(50)]
    result = {"root": str(args.root), "15MB": measure(args.root, one), "50x1MB": measure(args.root, many)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
