"""Held-out completion quality: the model against simple baselines, per language and cursor kind.

    python bench/quality.py --out runs/quality                   # test split, embedded model, in-process
    python bench/quality.py --server --out runs/quality-server   # through a real `dcopilot serve` over stdio
    python bench/quality.py --no-model --split calibration --out runs/q-cal   # baselines only
    python bench/quality.py --langs python,go --kinds line,block --limit 10 --out runs/q-small

Cases (bench/heldout/cases.jsonl, rebuilt from the registries by bench/heldout/build.py) cut a target out of
code from packages no training corpus of ours contains (bench/heldout/PACKAGES.toml): whole line after the indent,
rest of a line, inside a line, 2-6 line blocks, in Python, TypeScript, Go and Rust. The calibration split is for
choosing thresholds; report the test split. Systems: empty, line_above, copy (best copy from the same file),
bigram (counts from the calibration files only) and the model (the config's, as `dcopilot serve` would load it;
--model/--device override). Metrics (bench/heldout/metrics.py): edit similarity, exact match, shown rate, useful
and noise rates among shown suggestions. Writes DIR/predictions.jsonl (every system's answer per case),
DIR/summary.json and DIR/table.md, and prints the table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "bench" / "heldout"
for p in (str(ROOT), str(HELDOUT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import msgspec  # noqa: E402
from baselines import Bigram, Oracle, copy, empty, line_above  # noqa: E402
from cases import KINDS, Case  # noqa: E402
from metrics import Scored, score, table  # noqa: E402
from systems import Answer  # noqa: E402

if TYPE_CHECKING:  # imported where used: they load the server or the engine
    from systems import InProcess, Server

BASELINES = {"empty": empty, "line_above": line_above, "copy": copy}


def load(cases_path: Path, sources_path: Path) -> tuple[list[Case], dict[str, str]]:
    with gzip.open(sources_path, "rb") as f:
        sources = json.loads(f.read())
    decoder = msgspec.json.Decoder(Case)
    cases = [decoder.decode(line) for line in cases_path.read_bytes().splitlines() if line.strip()]
    for c in cases:
        if sources[c.file][c.start : c.end] != c.target:
            raise SystemExit(f"{cases_path}: case {c.id} does not match {sources_path} (rebuild both together)")
    return cases, sources


def select(cases: list[Case], split: str, langs: list[str], kinds: list[str], limit: int | None) -> list[Case]:
    """The matching cases; with `limit`, N evenly spaced ones per language and kind (cases are in file order, so
    this spreads them over the packages)."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for c in cases:
        if (split != "all" and c.split != split) or (langs and c.language not in langs) or c.kind not in kinds:
            continue
        groups.setdefault((c.language, c.kind), []).append(c)
    out = []
    for group in groups.values():
        if limit is not None and len(group) > limit:
            group = [group[i * len(group) // limit] for i in range(limit)]
        out.extend(group)
    return out


def bigrams(cases: list[Case], sources: dict[str, str], all_cases: list[Case]) -> dict[str, Bigram]:
    """One bigram model per language from its calibration files (never a test file)."""
    files: dict[str, set[str]] = {}
    for c in all_cases:
        if c.split == "calibration":
            files.setdefault(c.language, set()).add(c.file)
    models = {}
    for lang in {c.language for c in cases}:
        m = Bigram()
        for key in sorted(files.get(lang, ())):
            m.add(sources[key])
        models[lang] = m
    return models


def open_beside(case: Case, all_cases: list[Case], sources: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The workspace a case is typed in: the other held-out files of its package, open in the editor (never the
    case's own file, whose truth is cut out of the document)."""
    files = sorted({c.file for c in all_cases if c.package == case.package} - {case.file})
    return tuple((f, sources[f]) for f in files)


def run(cases, sources, all_cases, model=None, progress=None, workspace: bool = True) -> dict[str, list[dict]]:
    """system -> per-case records (prediction, metrics, seconds, the engine's score where known); with `workspace`,
    the model's editor has the case's package's other files open."""
    big = bigrams(cases, sources, all_cases)
    calibration_files = {c.file for c in all_cases if c.split == "calibration"}
    out: dict[str, list[dict]] = {name: [] for name in [*BASELINES, "bigram", *(["model"] if model else [])]}
    for i, c in enumerate(cases):
        doc, cursor = c.document(sources[c.file])
        oracle = Oracle.of(c.target)
        preds: dict[str, Answer] = {}
        for name, fn in BASELINES.items():
            preds[name] = Answer(fn(doc, cursor, c.kind, oracle))
        own = sources[c.file] if c.file in calibration_files else None  # a calibration case never trains on itself
        preds["bigram"] = Answer(big[c.language].predict(doc, cursor, c.kind, oracle, exclude=own))
        if model:
            others = open_beside(c, all_cases, sources) if workspace else ()
            preds["model"] = model.complete(doc, cursor, c.language, c.file, others)
        for name, a in preds.items():
            shown, exact, es = score(doc, cursor, c.target, a.text, a.replace)
            out[name].append(
                {
                    "id": c.id,
                    "language": c.language,
                    "kind": c.kind,
                    "shown": shown,
                    "exact": exact,
                    "es": es,
                    "seconds": a.seconds,
                    "text": a.text,
                    "replace": a.replace,
                    "score": a.score,
                }
            )
        if progress:
            progress(i + 1, len(cases))
    return out


def scored(records: list[dict]) -> list[Scored]:
    return [Scored(r["id"], r["language"], r["kind"], r["shown"], r["exact"], r["es"], r["seconds"]) for r in records]


def render(results: dict[str, list[dict]]) -> str:
    tables = {name: table(scored(recs)) for name, recs in results.items()}
    names = list(results)
    baselines = [n for n in names if n != "model"]
    keys = list(next(iter(tables.values())))
    lines = ["Edit similarity of the first suggestion (mean over cases; nothing shown = 0):", ""]
    head = ["language", "kind", "n", *names] + (["best baseline", "model - best"] if "model" in names else [])
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in keys:
        es = {n: tables[n][key].es for n in names}
        row = [key[0], key[1], str(tables[names[0]][key].n), *(f"{es[n]:.3f}" for n in names)]
        if "model" in names:
            best = max(baselines, key=lambda n: es[n])
            row += [f"{best} {es[best]:.3f}", f"{es['model'] - es[best]:+.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    for name in names:
        if name == "empty":
            continue
        lines += [
            "",
            f"{name}: exact match, shown rate, useful and noise among shown (useful: ES >= 0.7, noise: "
            "ES < 0.3), useful among all cases" + (", latency per case" if name == "model" else "") + ":",
            "",
        ]
        head = ["language", "kind", "n", "ES", "EM", "shown", "useful/shown", "noise/shown", "useful/all"]
        if name == "model":
            head += ["p50 ms", "p95 ms"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for key, r in tables[name].items():
            row = [
                key[0],
                key[1],
                str(r.n),
                f"{r.es:.3f}",
                f"{r.em:.3f}",
                f"{r.shown:.2f}",
                f"{r.useful:.2f}",
                f"{r.noise:.2f}",
                f"{r.useful_all:.2f}",
            ]
            if name == "model":
                secs = sorted(
                    x["seconds"] * 1000
                    for x in results[name]
                    if key[0] in ("all", x["language"]) and key[1] in ("all", x["kind"])
                )
                row += [f"{statistics.median(secs):.0f}", f"{secs[min(len(secs) - 1, int(0.95 * len(secs)))]:.0f}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory for predictions.jsonl, summary.json, table.md")
    ap.add_argument("--cases", type=Path, default=HELDOUT / "cases.jsonl")
    ap.add_argument("--sources", type=Path, default=HELDOUT / "sources.json.gz")
    ap.add_argument("--split", choices=("test", "calibration", "all"), default="test")
    ap.add_argument("--langs", default="", help="comma-separated (default: all)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    ap.add_argument("--limit", type=int, help="at most N cases per language and kind, evenly spaced over its files")
    ap.add_argument("--server", action="store_true", help="through a real `dcopilot serve` process over stdio")
    ap.add_argument("--no-model", action="store_true", help="baselines only")
    ap.add_argument("--model", default="", help="checkpoint dir (default: the config's model, else the embedded one)")
    ap.add_argument("--device", default="", help="cpu, cuda, ... (default: the config's)")
    ap.add_argument(
        "--min-score", type=float, help="completion.min_score, the gate (-100: open, to calibrate; default: config's)"
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads for the model (0: torch's default)")
    ap.add_argument(
        "--no-snippets",
        action="store_true",
        help="no workspace snippets (completion.snippets = 0, no files open beside)",
    )
    ap.add_argument("--no-retrieval", action="store_true", help="no candidates from context (completion.retrieve)")
    ap.add_argument(
        "--seed-canvas",
        action="store_true",
        help="the best retrieved candidate seeds a canvas (completion.seed_canvas)",
    )
    args = ap.parse_args()

    kinds = [k for k in args.kinds.split(",") if k]
    if set(kinds) - set(KINDS):
        ap.error(f"--kinds: unknown {sorted(set(kinds) - set(KINDS))}")
    all_cases, sources = load(args.cases, args.sources)
    cases = select(all_cases, args.split, [x for x in args.langs.split(",") if x], kinds, args.limit)
    if not cases:
        ap.error("no case matches --split/--langs/--kinds")

    env = {}
    if args.model:
        env["DCOPILOT_MODEL_PATH"] = args.model
    if args.device:
        env["DCOPILOT_MODEL_DEVICE"] = args.device
    if args.min_score is not None:
        env["DCOPILOT_COMPLETION_MIN_SCORE"] = str(args.min_score)
    if args.no_snippets:
        env["DCOPILOT_COMPLETION_SNIPPETS"] = "0"
    if args.no_retrieval:
        env["DCOPILOT_COMPLETION_RETRIEVE"] = "false"
    if args.seed_canvas:
        env["DCOPILOT_COMPLETION_SEED_CANVAS"] = "true"
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    os.environ.update(env)  # the in-process model reads the same settings as the server does
    model: Server | InProcess | None = None
    described = "none (baselines only)"
    started = time.perf_counter()
    if not args.no_model:
        try:
            if args.server:
                from systems import Server

                model = Server(env)
            else:
                from dcopilot.copilot.config import load_config
                from systems import InProcess

                if args.threads:
                    import torch

                    torch.set_num_threads(args.threads)
                model = InProcess(load_config())
        except Exception as e:  # a bad config, a missing checkpoint, a server that died: one line, no traceback
            print(f"quality: cannot start the model: {e}", file=sys.stderr)
            return 1
        described = model.describe()
    load_s = time.perf_counter() - started

    def progress(i: int, n: int) -> None:
        if i % 25 == 0 or i == n:
            print(f"  {i}/{n} cases", file=sys.stderr, flush=True)

    try:
        t0 = time.perf_counter()
        results = run(cases, sources, all_cases, model, progress, workspace=not args.no_snippets)
        run_s = time.perf_counter() - t0
    finally:
        if model:
            model.close()

    threads = os.environ.get("OMP_NUM_THREADS", "torch's default")
    if model and not args.server:
        import torch

        threads = str(torch.get_num_threads())
    hardware = (
        f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs visible, "
        f"model threads {threads}, python {platform.python_version()}"
    )
    header = [
        f"cases    : {len(cases)} ({args.split} split; langs {args.langs or 'all'}; kinds {','.join(kinds)}; "
        f"limit {args.limit or 'none'} per language and kind)",
        f"model    : {described}" + (f"; loaded in {load_s:.1f} s" if model else ""),
        (
            "path     : "
            + ("dcopilot serve over stdio" if args.server else "in-process (EngineService + dcopilot.lsp.items)")
        )
        if model
        else "path     : -",
        f"hardware : {hardware}",
        f"run      : {run_s:.0f} s",
        f"levers   : snippets {'off' if args.no_snippets else 'on'}, retrieval {'off' if args.no_retrieval else 'on'}, "
        f"seed canvas {'on' if args.seed_canvas else 'off'}",
    ]
    text = "\n".join(header) + "\n\n" + render(results)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "predictions.jsonl", "w") as f:
        for name, recs in results.items():
            for r in recs:
                f.write(json.dumps({"system": name, **r}, ensure_ascii=False) + "\n")
    summary = {
        name: {f"{k[0]}/{k[1]}": asdict(v) for k, v in table(scored(recs)).items()} for name, recs in results.items()
    }
    (args.out / "summary.json").write_text(json.dumps({"header": header, "tables": summary}, indent=1) + "\n")
    (args.out / "table.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
