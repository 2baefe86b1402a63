"""Pre-tokenized training data for the GPU recipe: FIM examples built here, carried to a machine without a network.

    python -m dcopilot.engine.training.pretok --out .carry/train [--corpus PATH] [--tokenizer PATH] [--mib 45]

--corpus is either today's corpus manifest (a JSON file such as engine/embedded/corpus_manifest.json: splits
train / heldout) or a corpus v2 root (a folder with manifest.jsonl, read through `corpus_v2.load`: splits train /
validation). Examples are drawn with the trainer's own `ExampleSampler` (same layouts, span kinds, pinned tails
and length mix as CPU training) into fixed (prompt, canvas) buckets, so a GPU step needs no tokenizer and no text.
The held-out split gives the validation examples only; it is never trained on.

Written: `data.safetensors.xz` (per bucket `<kind>.<P>x<L>.{prompt,canvas,pinned,n_middle}`, int16 ids when the
vocabulary fits, else int32; a safetensors file compressed with lzma), `meta.json` (buckets and counts, corpus,
tokenizer hash, seed, build time) and the `tokenizer.json` the ids belong to. Everything fits in --mib MiB.

Compressed, the examples take about a quarter of their size (padding, small ids, flags), so the carry holds about
four times the training examples it would hold raw: fewer passes over the same examples in a GPU session. The
examples are drawn for RATIO times the budget, then the training buckets are cut back evenly until the compressed
file fits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import math
import multiprocessing
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch
from dcopilot.engine.training.fim_data import AR_MIX, LANGUAGE_ALPHA_HELP, ExampleSampler, MixConfig
from dcopilot.engine.training.sources import CorpusSourceError, read_corpus
from safetensors.torch import save
from tokenizers import Tokenizer

META_VERSION = 1
PROMPTS = (64, 128, 192, 256)  # the CPU trainer's prompt lengths, without its rarely drawn 96
CANVASES = (32, 48, 64)
AR_BUCKETS = ((128, 48), (256, 48))  # AR warm start: layouts A/B, prompt + middle as one causal sequence
VAL_BUCKET = (160, 48)  # the CPU trainer's validation shape
VAL_EXAMPLES = {"val_diff": 256, "val_ar": 128}
AR_SHARE = 0.15  # of the byte budget (the trainer's ar_mix)
DATA_FILE = "data.safetensors.xz"
RATIO = 3.9  # raw bytes drawn per carried byte: lzma's default preset gave 3.95 on corpus v2's examples
TRAIN_KINDS = ("ar", "diff")  # cut back to fit; validation examples are never cut


class PretokError(RuntimeError):
    pass


def example_bytes(p: int, n: int, itemsize: int) -> int:
    return (p + n) * itemsize + n + 2  # ids, pinned flags (1 byte each), n_middle (int16)


def plan(
    mib: float, itemsize: int, other_bytes: int = 0, val: int = VAL_EXAMPLES["val_diff"]
) -> dict[str, dict[tuple[int, int], int]]:
    """Examples per bucket: validation first, then AR_SHARE of the rest to AR buckets, the remainder split evenly
    (in examples) over the diffusion buckets. other_bytes: the folder's other files (tokenizer, meta)."""
    budget = mib * 2**20 - other_bytes - 64 * 1024  # headroom for the safetensors header and meta.json
    out: dict[str, dict[tuple[int, int], int]] = {}
    for kind, n in VAL_EXAMPLES.items():
        n = n * val // VAL_EXAMPLES["val_diff"]
        out[kind] = {VAL_BUCKET: n}
        budget -= n * example_bytes(*VAL_BUCKET, itemsize)
    if budget <= 0:
        raise PretokError(f"{mib:.2f} MiB of examples leaves no room for training examples after validation")
    ar_each = int(budget * AR_SHARE / sum(example_bytes(p, n, itemsize) for p, n in AR_BUCKETS))
    out["ar"] = {b: ar_each for b in AR_BUCKETS}
    diff = [(p, n) for p in PROMPTS for n in CANVASES]
    each = int(budget * (1 - AR_SHARE) / sum(example_bytes(p, n, itemsize) for p, n in diff))
    out["diff"] = {b: each for b in diff}
    return out


# Worker processes inherit these through fork instead of pickling the corpus once per task.
_WORK: dict = {}


def _draw(task: tuple[str, int, int, int, int]) -> dict[str, torch.Tensor]:
    kind, p, n, count, seed = task
    held = kind.startswith("val")
    texts = _WORK["held"] if held else _WORK["train"]
    mix = AR_MIX if kind.endswith("ar") else MixConfig()
    if not held:  # held-out examples keep the corpus's own mix, as the CPU trainer's validation does
        mix = replace(mix, language_alpha=_WORK["language_alpha"])
    sampler = ExampleSampler(_WORK["tok"], texts, seed=seed, mix=mix, languages=_WORK["languages"])
    exs = [sampler.example(p, n) for _ in range(count)]
    dtype = _WORK["dtype"]
    return {
        "prompt": torch.tensor([e.prompt for e in exs], dtype=dtype),
        "canvas": torch.tensor([e.canvas for e in exs], dtype=dtype),
        "pinned": torch.tensor([e.pinned for e in exs], dtype=torch.uint8),
        "n_middle": torch.tensor([e.n_middle for e in exs], dtype=torch.int16),
    }


def build(
    tok_path: Path,
    corpus: Path,
    out: Path,
    mib: float = 45.0,
    seed: int = 0,
    workers: int = 1,
    val: int = VAL_EXAMPLES["val_diff"],
    language_alpha: float = MixConfig.language_alpha,
    log=print,
) -> dict:
    t0 = time.monotonic()
    tok = Tokenizer.from_file(str(tok_path))
    if mib * 2**20 <= tok_path.stat().st_size:
        raise PretokError(f"--mib {mib} leaves no room for training examples")
    source = read_corpus(corpus)
    train, held, desc = source.train, source.heldout, source.record
    if not train or not held:
        raise PretokError(f"{corpus}: the train or held-out split is empty")
    vocab = tok.get_vocab_size()
    dtype = torch.int16 if vocab <= 2**15 else torch.int32
    itemsize = 2 if dtype == torch.int16 else 4
    counts = plan(mib * RATIO, itemsize, tok_path.stat().st_size, val)
    _WORK.update(
        tok=tok, train=train, held=held, dtype=dtype, languages=source.languages, language_alpha=language_alpha
    )
    # One task per (bucket, chunk); each chunk has its own seed, so the result depends on the seed only.
    chunk = 2000
    tasks = []
    for ki, (kind, buckets) in enumerate(sorted(counts.items())):
        for bi, ((p, n), count) in enumerate(sorted(buckets.items())):
            for ci, start in enumerate(range(0, count, chunk)):
                task_seed = seed * 1_000_003 + ki * 10_007 + bi * 101 + ci
                tasks.append((kind, p, n, min(chunk, count - start), task_seed))
    log(f"pretok: {sum(t[3] for t in tasks):,} examples in {len(tasks)} chunks, {workers} worker(s)")
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_draw, tasks)
    else:
        parts = [_draw(t) for t in tasks]
    _WORK.clear()
    tensors: dict[str, torch.Tensor] = {}
    grouped: dict[str, list[dict[str, torch.Tensor]]] = {}
    for (kind, p, n, _, _), part in zip(tasks, parts, strict=True):
        grouped.setdefault(f"{kind}.{p}x{n}", []).append(part)
    for key, chunks in grouped.items():
        for field in ("prompt", "canvas", "pinned", "n_middle"):
            tensors[f"{key}.{field}"] = torch.cat([c[field] for c in chunks]).contiguous()
    room = mib * 2**20 - tok_path.stat().st_size - 16 * 1024  # the tokenizer and meta.json travel beside it
    tensors, packed = fit(tensors, room)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / DATA_FILE).write_bytes(packed)
    shutil.copy2(tok_path, tmp / "tokenizer.json")
    meta = {
        "version": META_VERSION,
        "buckets": {key: int(tensors[f"{key}.prompt"].shape[0]) for key in sorted(grouped)},  # after any cut
        "vocab_size": vocab,
        "id_dtype": str(dtype).removeprefix("torch."),
        "tokenizer_sha256": hashlib.sha256(tok_path.read_bytes()).hexdigest(),
        "corpus": desc | {"train_files": len(train), "heldout_files": len(held)},
        "pad_weight": MixConfig().pad_weight,
        "seed": seed,
        "language_alpha": language_alpha,
        "seconds": round(time.monotonic() - t0, 1),
    }
    size = (tmp / DATA_FILE).stat().st_size + (tmp / "tokenizer.json").stat().st_size
    meta["bytes"] = size
    meta["raw_bytes"] = sum(t.numel() * t.element_size() for t in tensors.values())
    if size > mib * 2**20:
        raise PretokError(f"built {size / 2**20:.1f} MiB, over the {mib} MiB budget")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log(f"pretok: wrote {out} ({size / 2**20:.1f} MiB) in {meta['seconds']} s")
    return meta


def fit(tensors: dict[str, torch.Tensor], room: float) -> tuple[dict[str, torch.Tensor], bytes]:
    """The tensors, with every training bucket cut back by the same share if need be, and their compressed
    safetensors bytes, at most `room` of them (validation buckets are kept whole)."""
    keep = 1.0
    while True:
        kept = {}
        for key, t in tensors.items():
            cut = key.split(".", 1)[0] in TRAIN_KINDS and keep < 1.0
            kept[key] = t[: max(1, math.floor(t.shape[0] * keep))].contiguous() if cut else t
        packed = lzma.compress(save(kept))
        if len(packed) <= room:
            return kept, packed
        if keep < 0.01:
            raise PretokError(f"the examples do not fit in {room / 2**20:.1f} MiB even when cut to 1 %")
        keep *= 0.98 * room / len(packed)


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=repo / ".carry" / "train")
    ap.add_argument("--corpus", type=Path, default=repo / "engine" / "embedded" / "corpus_manifest.json")
    ap.add_argument("--tokenizer", type=Path, default=repo / "engine" / "embedded" / "tokenizer.json")
    ap.add_argument("--mib", type=float, default=45.0, help="size budget of the folder (the carry limit is 50 MiB)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--val", type=int, default=VAL_EXAMPLES["val_diff"], help="held-out diffusion examples (AR: half)")
    ap.add_argument(
        "--language-alpha",
        type=float,
        default=MixConfig.language_alpha,
        help=LANGUAGE_ALPHA_HELP,
    )
    args = ap.parse_args(argv)
    try:
        build(
            args.tokenizer,
            args.corpus,
            args.out,
            args.mib,
            args.seed,
            args.workers,
            args.val,
            language_alpha=args.language_alpha,
        )
    except (PretokError, CorpusSourceError, ValueError) as e:
        ap.exit(1, f"pretok: {e}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
