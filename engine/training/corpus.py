"""Training corpus for the embedded model: the Python standard library of the running interpreter.

The corpus is present on every machine that can run dcopilot (it is the interpreter's own source), its licence
is the PSF licence, and the exact file list is recorded in a manifest (path, sha256, bytes, split) so a rebuild
can check it trains on the same bytes. The held-out split is made of whole top-level packages/modules, chosen by
a salted hash of their name, so no file of a held-out package is ever trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST_VERSION = 1
# Salt and modulus of the held-out rule; changing them changes the split (and invalidates old eval numbers).
SPLIT_SALT = "dcopilot-heldout-v1"
SPLIT_MODULUS = 10  # about 1 in 10 top-level units is held out

# Directories that are tests, build data or machine-specific; their code is either unusual (huge test tables)
# or differs between machines (sysconfig data), which would break reproducibility.
EXCLUDED_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "pydoc_data"}
EXCLUDED_PREFIXES = ("config-", "_sysconfigdata")
MAX_FILE_BYTES = 300_000
MIN_FILE_BYTES = 64
# Generated codec tables (encodings/cp1252.py ...) are thousands of near-identical literal lines.
GENERATED_MARKERS = ("generated from 'MAPPINGS/", "Python Character Mapping Codec")


@dataclass(frozen=True)
class CorpusFile:
    path: str  # relative to the corpus root, '/'-separated
    sha256: str
    bytes: int
    unit: str  # top-level package or module name: the unit of the train/held-out split
    split: str  # "train" | "heldout"


def stdlib_root() -> Path:
    """The standard library directory of the running interpreter (the base one when inside a venv)."""
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def split_of(unit: str) -> str:
    digest = hashlib.sha256(f"{SPLIT_SALT}:{unit}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") % SPLIT_MODULUS == 0 else "train"


def _excluded(rel: Path) -> bool:
    parts = rel.parts
    if any(p in EXCLUDED_DIRS for p in parts[:-1]):
        return True
    return any(p.startswith(EXCLUDED_PREFIXES) for p in parts)


def scan(root: Path) -> list[CorpusFile]:
    """Deterministic file list: sorted paths, content-deduplicated (first path in sort order wins)."""
    seen: set[str] = set()
    files: list[CorpusFile] = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root)
        if _excluded(rel) or not p.is_file():
            continue
        data = p.read_bytes()
        if not (MIN_FILE_BYTES <= len(data) <= MAX_FILE_BYTES):
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if any(m in text[:2000] for m in GENERATED_MARKERS):
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        unit = rel.parts[0].removesuffix(".py")
        files.append(CorpusFile(rel.as_posix(), digest, len(data), unit, split_of(unit)))
    return files


def build_manifest(root: Path | None = None) -> dict:
    root = root or stdlib_root()
    files = scan(root)
    return {
        "version": MANIFEST_VERSION,
        "source": "CPython standard library (*.py) of the interpreter that ran the build",
        "python": sys.version.split()[0],
        "root": str(root),
        "licence": "PSF-2.0 (Python Software Foundation License), see LICENSE.txt in the root",
        "split_rule": f"sha256('{SPLIT_SALT}:' + top-level unit) mod {SPLIT_MODULUS} == 0 -> heldout",
        "excluded": {
            "dirs": sorted(EXCLUDED_DIRS),
            "prefixes": list(EXCLUDED_PREFIXES),
            "max_bytes": MAX_FILE_BYTES,
            "min_bytes": MIN_FILE_BYTES,
            "generated_markers": list(GENERATED_MARKERS),
            "duplicates": "by sha256 of content, first path in sorted order kept",
        },
        "files": [asdict(f) for f in files],
    }


class CorpusMismatch(RuntimeError):
    pass


def load_texts(manifest: dict, split: str, root: Path | None = None, strict: bool = True) -> dict[str, str]:
    """Read the files of one split listed in a manifest; strict mode fails on any missing or changed file."""
    root = Path(root or manifest["root"])
    out: dict[str, str] = {}
    problems: list[str] = []
    for f in manifest["files"]:
        if f["split"] != split:
            continue
        p = root / f["path"]
        try:
            data = p.read_bytes()
        except OSError as e:
            problems.append(f"{f['path']}: {e.strerror}")
            continue
        if hashlib.sha256(data).hexdigest() != f["sha256"]:
            problems.append(f"{f['path']}: content differs from the manifest")
            continue
        out[f["path"]] = data.decode("utf-8")
    if problems and strict:
        head = "; ".join(problems[:5])
        raise CorpusMismatch(f"{len(problems)} corpus files missing or changed under {root}: {head}")
    return out


def summary(manifest: dict) -> dict[str, dict[str, int]]:
    s: dict[str, dict[str, int]] = {}
    for f in manifest["files"]:
        d = s.setdefault(f["split"], {"files": 0, "bytes": 0, "units": 0})
        d["files"] += 1
        d["bytes"] += f["bytes"]
    for split in s:
        s[split]["units"] = len({f["unit"] for f in manifest["files"] if f["split"] == split})
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the embedded model's corpus manifest (exact file list).")
    ap.add_argument("--out", type=Path, required=True, help="manifest path (JSON)")
    ap.add_argument("--root", type=Path, default=None, help="corpus root (default: this interpreter's stdlib)")
    args = ap.parse_args(argv)
    manifest = build_manifest(args.root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps(summary(manifest)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
