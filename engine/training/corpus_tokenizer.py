"""Tokenizer for corpus v2: train byte-level BPEs on a language-balanced sample of the train split and measure
bytes per token per language on the validation split, next to the shipped tokenizer.

    python -m dcopilot.engine.training.corpus_tokenizer --root ~/.cache/dcopilot-corpus/v2

Writes tokenizer-<vocab>.json for each vocabulary size, tokenizer.json (the chosen one) and tokenizer_report.json
into --root (beside the corpus, not into engine/embedded), and prints the table as Markdown. The special tokens
and their ids are bpe.SPECIAL_TOKENS, the ones the shipped tokenizer has.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import defaultdict
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path

from dcopilot.engine.training import corpus_v2
from dcopilot.engine.training.bpe import SPECIAL_TOKENS, train_bpe
from tokenizers import Tokenizer

VOCAB_SIZES = (8192, 16384)
SAMPLE_MB_PER_LANGUAGE = 4.0  # BPE training text per language (balanced, so Go's bulk does not crowd out Lua)
MEASURE_MB_PER_LANGUAGE = 2.0  # validation text measured per language
# Below this share of MEASURE_MB_PER_LANGUAGE, a language's validation text is too little to measure on.
MIN_VALIDATION_SHARE = 0.25
# The chosen vocabulary: the smallest whose mean bytes/token is within this share of the best one. A larger
# vocabulary costs embedding parameters that a small CPU model pays on every step.
CHOOSE_WITHIN = 0.10


def _rank(e: corpus_v2.ManifestEntry) -> int:
    # a fixed pseudo-random order: files are taken by their hash, not by package or path
    return int(e.sha256[:12], 16)


def _select(
    entries: list[corpus_v2.ManifestEntry], split: str, mb: float, keep: Callable[[corpus_v2.ManifestEntry], bool]
) -> dict[str, set[str]]:
    """Per language, the paths of `split` files (in hash order) up to `mb` megabytes."""
    chosen: dict[str, set[str]] = defaultdict(set)
    used: dict[str, int] = defaultdict(int)
    for e in sorted(entries, key=_rank):
        if e.split != split or not keep(e) or used[e.language] >= mb * 1e6:
            continue
        chosen[e.language].add(e.path)
        used[e.language] += e.bytes
    return chosen


def _texts(root: Path, split: str, paths: dict[str, set[str]]) -> dict[str, list[str]]:
    wanted = {p for ps in paths.values() for p in ps}
    out: dict[str, list[str]] = defaultdict(list)
    for f in corpus_v2.load(root, split, where=lambda e: e.path in wanted):
        out[f.language].append(f.text)
    return out


def bytes_per_token(tok: Tokenizer, texts: list[str]) -> float:
    if not texts:
        return float("nan")
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    return n_bytes / max(n_tokens, 1)


def study(
    root: Path,
    vocab_sizes: tuple[int, ...] = VOCAB_SIZES,
    sample_mb: float = SAMPLE_MB_PER_LANGUAGE,
    measure_mb: float = MEASURE_MB_PER_LANGUAGE,
) -> dict:
    """Train one BPE per vocabulary size, measure all of them and the shipped one; write them under root."""
    entries = corpus_v2.read_manifest(root / corpus_v2.MANIFEST_NAME)
    train_paths = _select(entries, "train", sample_mb, lambda e: True)
    sampled = {p for ps in train_paths.values() for p in ps}
    val_paths = _select(entries, "validation", measure_mb, lambda e: True)
    # a language with little validation text is also measured on train files the BPE sample left out
    size = {e.path: e.bytes for e in entries}
    extra_paths: dict[str, set[str]] = {}
    for lang in train_paths:
        have = sum(size[p] for p in val_paths.get(lang, ()))
        if have < measure_mb * 1e6 * MIN_VALIDATION_SHARE:

            def unseen(e: corpus_v2.ManifestEntry, lang: str = lang) -> bool:
                return e.language == lang and e.path not in sampled

            extra = _select(entries, "train", measure_mb - have / 1e6, unseen).get(lang, set())
            if extra:
                extra_paths[lang] = extra
    train_texts = _texts(root, "train", train_paths)
    measure = _texts(root, "validation", val_paths)
    for lang, texts in _texts(root, "train", extra_paths).items():
        measure[lang] = measure.get(lang, []) + texts
    # languages interleaved so the trainer's sample is balanced even if it stops reading early
    order = [t for group in zip_longest(*train_texts.values()) for t in group if t is not None]
    shipped = Tokenizer.from_file(str(corpus_v2.SHIPPED_TOKENIZER))
    tokenizers: dict[str, Tokenizer] = {"shipped 8192 (CPython only)": shipped}
    for v in vocab_sizes:
        tok = train_bpe(order, vocab_size=v)
        tok.save(str(root / f"tokenizer-{v}.json"))
        tokenizers[f"v2 {v}"] = tok
    languages = sorted(measure)
    table = {
        name: {lang: round(bytes_per_token(tok, measure[lang]), 3) for lang in languages}
        for name, tok in tokenizers.items()
    }
    means = {name: round(sum(row.values()) / len(row), 3) for name, row in table.items() if row}
    best = max(means[f"v2 {v}"] for v in vocab_sizes)
    chosen = min(v for v in vocab_sizes if means[f"v2 {v}"] >= best * (1 - CHOOSE_WITHIN))
    shutil.copyfile(root / f"tokenizer-{chosen}.json", root / "tokenizer.json")
    report = {
        "special_tokens": list(SPECIAL_TOKENS),
        "train_sample_bytes": {lang: sum(len(t.encode()) for t in ts) for lang, ts in train_texts.items()},
        "measured_bytes": {lang: sum(len(t.encode()) for t in ts) for lang, ts in measure.items()},
        "also_measured_on_train_files_outside_the_sample": sorted(extra_paths),
        "bytes_per_token": table,
        "mean_bytes_per_token": means,
        "chosen_vocab": chosen,
        "choice_rule": f"smallest vocabulary within {CHOOSE_WITHIN:.0%} of the best mean bytes/token",
    }
    (root / "tokenizer_report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def format_table(report: dict) -> str:
    table = report["bytes_per_token"]
    languages = sorted(next(iter(table.values())))
    lines = ["| tokenizer | " + " | ".join(languages) + " | mean |", "|---|" + "---:|" * (len(languages) + 1)]
    for name, row in table.items():
        cells = [f"{row[lang]:.2f}" for lang in languages] + [f"{report['mean_bytes_per_token'][name]:.2f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=corpus_v2.DEFAULT_ROOT)
    ap.add_argument("--vocab", type=int, nargs="+", default=list(VOCAB_SIZES))
    ap.add_argument("--sample-mb", type=float, default=SAMPLE_MB_PER_LANGUAGE, help="BPE training text per language")
    ap.add_argument("--measure-mb", type=float, default=MEASURE_MB_PER_LANGUAGE, help="measured text per language")
    args = ap.parse_args(argv)
    report = study(args.root.expanduser(), tuple(args.vocab), args.sample_mb, args.measure_mb)
    print(format_table(report))
    print(f"chosen: {report['chosen_vocab']} ({report['choice_rule']}) -> {args.root / 'tokenizer.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
