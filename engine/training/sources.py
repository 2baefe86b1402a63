"""Where training text comes from: today's corpus manifest (one JSON file) or a corpus v2 root (a folder).

Both the CPU trainer and the GPU recipe's pre-tokenizer read a corpus through `read_corpus`, so a run names its data
the same way on either path, and `record` is what a checkpoint's training card says about it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from dcopilot.engine.training.corpus import load_texts, summary


class CorpusSourceError(RuntimeError):
    pass


@dataclass(frozen=True)
class TrainingCorpus:
    train: dict[str, str]  # path -> text, the files trained on
    heldout: dict[str, str]  # whole packages never trained on: validation and promotion only
    record: dict  # JSON for the training card: what the corpus is, its fingerprint and size
    languages: dict[str, str] = field(default_factory=dict)  # path -> language (v2; empty for v1, Python only)


def _v2():
    # Imported on use: it reads manifests with msgspec, and the GPU recipe imports this module (through train.py) on
    # machines that have only torch, safetensors and tokenizers and never read a corpus there.
    from dcopilot.engine.training import corpus_v2

    return corpus_v2


def is_v2(path: Path) -> bool:
    return Path(path).expanduser().is_dir()


def manifest_file(path: Path) -> Path:
    """The file that fixes the corpus's contents: a v1 manifest itself, or a v2 root's manifest.jsonl."""
    path = Path(path).expanduser()
    return path / _v2().MANIFEST_NAME if path.is_dir() else path


def fingerprint(path: Path) -> str:
    return hashlib.sha256(manifest_file(path).read_bytes()).hexdigest()


def _v2_summary(texts: dict[str, str], languages: dict[str, str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for p, text in texts.items():
        row = out.setdefault(languages[p], {"files": 0, "bytes": 0})
        row["files"] += 1
        row["bytes"] += len(text.encode("utf-8"))
    return dict(sorted(out.items()))


def read_corpus(path: Path, train: bool = True) -> TrainingCorpus:
    """Train and held-out texts of a v1 manifest file (splits train / heldout) or a corpus v2 root (splits train /
    validation; every file's sha256 is checked against the manifest, so a changed corpus is refused). With
    train=False only the held-out split is read (the train dict stays empty)."""
    path = Path(path).expanduser()
    if path.is_dir():
        corpus_v2 = _v2()
        if not (path / corpus_v2.MANIFEST_NAME).is_file():
            raise CorpusSourceError(f"{path} is a folder without {corpus_v2.MANIFEST_NAME}: not a corpus v2 root")
        data = manifest_file(path).read_bytes()  # once: the entries and the fingerprint are of the same bytes
        entries = corpus_v2.parse_manifest(data)
        languages: dict[str, str] = {}
        splits: dict[str, dict[str, str]] = {}
        for split in ("train", "validation") if train else ("validation",):
            splits[split] = {}
            for f in corpus_v2.load(path, split, entries=entries):
                splits[split][f.path] = f.text
                languages[f.path] = f.language
        splits.setdefault("train", {})
        record = {
            "kind": "corpus-v2",
            "root": str(path),
            "manifest_sha256": hashlib.sha256(data).hexdigest(),
            "heldout_split": "validation",
            "summary": {
                "train": _v2_summary(splits["train"], languages),
                "heldout": _v2_summary(splits["validation"], languages),
            },
            # the corpus build admits permissive licences only; these are the ones its files actually carry
            "licence": ", ".join(sorted({e.license for e in entries})),
        }
        return TrainingCorpus(splits["train"], splits["validation"], record, languages)
    if not path.is_file():
        raise CorpusSourceError(f"no corpus at {path} (a corpus manifest .json or a corpus v2 folder)")
    data = path.read_bytes()
    manifest = json.loads(data)
    record = {
        "kind": "manifest-v1",
        "manifest": str(path),
        "manifest_sha256": hashlib.sha256(data).hexdigest(),
        "heldout_split": "heldout",
        "python": manifest.get("python", ""),
        "source": manifest.get("source", ""),
        "summary": summary(manifest),
        "licence": manifest.get("licence", ""),
    }
    texts = load_texts(manifest, "train") if train else {}
    return TrainingCorpus(texts, load_texts(manifest, "heldout"), record)
