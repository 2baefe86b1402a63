"""Build infill eval cases from files the embedded model never trained on.

Sources:
  --manifest M   the embedded model's corpus manifest (engine/training/corpus.py); only files of its "heldout" split are
                 used (whole top-level stdlib packages chosen by a salted hash; none of their files is trained on).
  --humaneval F  a HumanEval-Infilling jsonl(.gz) file (OpenAI, MIT), which no part of our corpus contains.

Each output line is {"prefix", "suffix", "target", "language", "path", "kind", "source"}. The prefix and suffix
are cut at line boundaries to a few thousand characters (far more than any prompt window uses).
Deterministic for a given --seed. Targets come from the same span sampler as the embedded model's training
examples; the stdlib cases in bench/cases/ were drawn by an earlier, separate sampler, so regenerating them gives
different (equally held-out) cases.

  python bench/make_cases.py --manifest runs/manifest.json --count 300 --out bench/cases/stdlib-heldout.jsonl
  python bench/make_cases.py --humaneval HumanEval-SingleLineInfilling.jsonl.gz --count 200 \
      --out bench/cases/humaneval-single.jsonl
(the HumanEval-Infilling files are published in OpenAI's human-eval-infilling repository, data/ folder)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
from pathlib import Path

KINDS = (("line", 0.45), ("multiline", 0.35), ("partial", 0.20))
PREFIX_CHARS = 4000
SUFFIX_CHARS = 2000
MAX_TARGET_CHARS = {"line": 100, "multiline": 160, "partial": 40}


def clip_prefix(text: str, limit: int = PREFIX_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text.find("\n", len(text) - limit)
    return text[cut + 1 :] if cut >= 0 else text[-limit:]


def clip_suffix(text: str, limit: int = SUFFIX_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[: cut + 1] if cut >= 0 else text[:limit]


def pick_span(text: str, kind: str, rng: random.Random, tries: int = 50) -> tuple[int, int] | None:
    """(start, end) of a target drawn by the training span sampler (engine/training/fim_data.py), kept when it is short
    enough for its kind and does not start on a comment line (a comment is a poor thing to ask a model for)."""
    from dcopilot.engine.training.fim_data import sample_span

    for _ in range(tries):
        span = sample_span(text, rng, kind, max_lines=4, tries=1)
        if span is None:
            continue
        line_start = text.rfind("\n", 0, span.start) + 1
        target = text[span.start : span.end]
        if text[line_start:].lstrip().startswith("#") or not target.strip() or len(target) > MAX_TARGET_CHARS[kind]:
            continue
        return span.start, span.end
    return None


def stdlib_cases(manifest_path: Path, count: int, seed: int) -> list[dict]:
    from dcopilot.engine.training.corpus import load_texts

    manifest = json.loads(manifest_path.read_text())
    texts = load_texts(manifest, "heldout", strict=False)  # files that changed on this machine are skipped
    if not texts:
        raise SystemExit(f"{manifest_path}: no held-out files readable under {manifest['root']}")
    paths = sorted(texts)
    weights = [len(texts[p]) for p in paths]
    rng = random.Random(seed)
    cases: list[dict] = []
    seen: set[tuple[str, tuple[int, int]]] = set()
    while len(cases) < count:
        path = rng.choices(paths, weights=weights)[0]
        kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
        text = texts[path]
        span = pick_span(text, kind, rng)
        if span is None or (path, span) in seen:
            continue
        seen.add((path, span))
        start, end = span
        cases.append(
            {
                "prefix": clip_prefix(text[:start]),
                "suffix": clip_suffix(text[end:]),
                "target": text[start:end],
                "language": "python",
                "path": path,
                "kind": kind,
                "source": f"stdlib-heldout:{manifest['python']}:{hashlib.sha256(text.encode()).hexdigest()[:12]}",
            }
        )
    return cases


def humaneval_cases(path: Path, count: int, seed: int) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rng = random.Random(seed)
    rows = rng.sample(rows, min(count, len(rows)))
    return [
        {
            "prefix": r["prompt"],
            "suffix": r["suffix"],
            "target": r["canonical_solution"],
            "language": "python",
            "path": "solution.py",
            "kind": "humaneval",
            "source": r["task_id"],
        }
        for r in rows
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", type=Path, help="embedded-model corpus manifest (held-out split is used)")
    src.add_argument("--humaneval", type=Path, help="HumanEval-Infilling jsonl or jsonl.gz")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if args.manifest:
        cases = stdlib_cases(args.manifest, args.count, args.seed)
    else:
        cases = humaneval_cases(args.humaneval, args.count, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False) + "\n")
    kinds: dict[str, int] = {}
    for c in cases:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    print(f"{len(cases)} cases -> {args.out} {kinds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
