"""Corpus v2 for the embedded model: permissively licensed source code in nine languages from package registries.

    python -m dcopilot.engine.training.corpus_v2 build --out ~/.cache/dcopilot-corpus/v2
    python -m dcopilot.engine.training.corpus_v2 summary --root ~/.cache/dcopilot-corpus/v2

`build` downloads every package of corpus_v2_packages.toml with its registry's client (cached, so a rerun is
quick and an interrupted build resumes), keeps the packages whose own metadata names a permissive licence, keeps
their source files (corpus_filters), removes exact and near duplicates (corpus_dedup), splits whole packages into
train and validation by a hash of their name, and writes the files, a manifest (one JSON line per file) and
build.json (versions, licences, counts, timings) under --out. Packages of the quality benchmark's held-out sets
are refused by name, and files that copy their sources are removed as duplicates of them.

`load(root, split)` is the reading API for training: it yields CorpusFile records and refuses a file whose
content no longer matches the manifest.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
import tomllib
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from dcopilot.engine.training import corpus_dedup, corpus_fetch, corpus_filters, corpus_licenses

REPO = Path(__file__).resolve().parents[2]
PACKAGES_TOML = Path(__file__).with_name("corpus_v2_packages.toml")
HELDOUT_DIR = REPO / "bench" / "heldout"
DEFAULT_ROOT = Path.home() / ".cache" / "dcopilot-corpus" / "v2"
SHIPPED_TOKENIZER = REPO / "engine" / "embedded" / "tokenizer.json"
MANIFEST_NAME = "manifest.jsonl"
BUILD_NAME = "build.json"
FILES_DIR = "files"
STAGE_VERSION = 3  # bump when filters change: staged packages are recomputed
# Salt and modulus of the validation rule; changing them changes the split.
SPLIT_SALT = "dcopilot-corpus-v2"
SPLIT_MODULUS = 20  # about 1 package in 20 is validation
SPLITS = ("train", "validation")


class CorpusError(RuntimeError):
    pass


class CorpusMismatch(CorpusError):
    pass


# --- packages -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageSpec:
    ecosystem: str  # "pypi" | "npm" | "debian"
    name: str
    exclude: tuple[str, ...] = ()  # path globs (fnmatch) inside the archive to leave out
    split: str = ""  # "" = by the hash rule (split_of); "train" for the packages the list pins there


def project_of(ecosystem: str, name: str) -> tuple[str, str]:
    """The project a registry package carries, so that every version and packaging of one project gets the same
    split and the same held-out check: librust-semver-0.9-dev is crate `semver`, golang-github-x-y-dev is Go
    module `github-x-y`, PyPI names compare in their normalized form."""
    if ecosystem == "debian":
        m = re.fullmatch(r"librust-(.+?)(?:-\d+(?:\.\d+)*)?(?:\+.*)?-dev", name)
        if m:
            return ("crates", m.group(1).replace("_", "-"))
        m = re.fullmatch(r"golang-(.+)-dev", name)
        if m:
            return ("go", m.group(1))
        return ("debian", name)
    if ecosystem == "pypi":
        return ("pypi", re.sub(r"[-_.]+", "-", name).lower())
    return (ecosystem, name.lower())


def split_of(ecosystem: str, name: str, pinned: str = "") -> str:
    if pinned:
        return pinned
    family, project = project_of(ecosystem, name)
    digest = hashlib.sha256(f"{SPLIT_SALT}:{family}:{project}".encode()).digest()
    return "validation" if int.from_bytes(digest[:8], "big") % SPLIT_MODULUS == 0 else "train"


def heldout_projects(path: Path = HELDOUT_DIR / "PACKAGES.toml") -> set[tuple[str, str]]:
    pkgs = tomllib.loads(path.read_text())["package"]
    return {project_of(p["ecosystem"], p["name"]) for p in pkgs}


def load_packages(path: Path = PACKAGES_TOML, heldout: set[tuple[str, str]] | None = None) -> list[PackageSpec]:
    """The committed package list; fails when it names a held-out benchmark project or a package twice."""
    data = tomllib.loads(path.read_text())
    excludes = {k: tuple(v) for k, v in data.get("exclude", {}).items()}
    pinned = set(data.get("split", {}).get("train", []))
    specs = [
        PackageSpec(eco, name, excludes.get(f"{eco}:{name}", ()), "train" if f"{eco}:{name}" in pinned else "")
        for eco in ("pypi", "npm", "debian")
        for name in data.get(eco, [])
    ]
    seen = Counter((s.ecosystem, s.name) for s in specs)
    twice = [f"{e}:{n}" for (e, n), c in seen.items() if c > 1]
    if twice:
        raise CorpusError(f"{path.name} lists packages twice: {twice[:10]}")
    check_not_heldout(specs, heldout_projects() if heldout is None else heldout)
    return specs


def check_not_heldout(specs: Iterable[PackageSpec], heldout: set[tuple[str, str]]) -> None:
    bad = [f"{s.ecosystem}:{s.name}" for s in specs if project_of(s.ecosystem, s.name) in heldout]
    if bad:
        raise CorpusError(f"packages of the held-out quality benchmark must never be in the corpus: {bad}")


# --- one package: licence, version, filtered files --------------------------------------------------------------


class StagedFile(msgspec.Struct, frozen=True):
    path: str  # inside the archive, after its top directory
    language: str
    text: str
    sha256: str
    signature: bytes  # MinHash signature (corpus_dedup.NUM_PERM uint32)


class Staged(msgspec.Struct):
    """One package after licence check and file filters, before cross-package dedup (cached per archive)."""

    stage_version: int
    ecosystem: str
    name: str
    archive: str
    version: str = ""
    licence: str = ""
    licence_evidence: str = ""
    status: str = "ok"  # "ok" or why the package contributes nothing
    files: list[StagedFile] = msgspec.field(default_factory=list)
    drops: dict[str, int] = msgspec.field(default_factory=dict)


def _metadata_path(spec: PackageSpec, path: str) -> bool:
    if spec.ecosystem == "pypi":
        return path == "PKG-INFO"
    if spec.ecosystem == "npm":
        return path == "package.json"
    return path == f"usr/share/doc/{spec.name}/copyright"


def _debian_version(archive: Path) -> str:
    parts = archive.name.split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else ""


def stage_package(spec: PackageSpec, archive: Path) -> Staged:
    """Read one archive: licence from its metadata, version, and the source files that pass the filters."""
    st = Staged(STAGE_VERSION, spec.ecosystem, spec.name, archive.name)
    drops: Counter[str] = Counter()
    meta: dict[str, bytes] = {}
    candidates: list[tuple[str, bytes]] = []

    def want(path: str) -> bool:
        if _metadata_path(spec, path):
            return True
        if corpus_filters.language_of(path) is None:
            return False
        if any(fnmatchcase(path, g) for g in spec.exclude):
            drops["excluded"] += 1
            return False
        reason = corpus_filters.path_reason(path)
        if reason:
            drops[reason] += 1
            return False
        return True

    try:
        for path, data in corpus_fetch.iter_members(archive, want):
            if _metadata_path(spec, path):
                meta[path] = data
            else:
                candidates.append((path, data))
    except (corpus_fetch.FetchError, OSError, EOFError, ValueError) as e:  # tarfile errors are ValueError/OSError
        st.status = f"unreadable archive: {e}"
        return st
    lic, stanzas = _licence(spec, meta, st)
    if not lic.ok:
        st.status = f"licence: {lic.reason}"
        st.licence_evidence = lic.evidence
        return st
    st.licence, st.licence_evidence = lic.spdx, lic.evidence
    cpp = any(Path(p).suffix.lower() in corpus_filters.CPP_EXTENSIONS for p, _ in candidates)
    emitted = corpus_filters.emitted_declarations([p for p, _ in candidates])
    for path, data in sorted(candidates):
        if path in emitted:
            drops["generated"] += 1
            continue
        if stanzas is not None and not corpus_licenses.debian_file_allowed(path, stanzas):
            drops["licence"] += 1
            continue
        text = corpus_filters.decode(data)
        if text is None:
            drops["binary-or-not-utf8"] += 1
            continue
        reason = corpus_filters.text_reason(text)
        if reason:
            drops[reason] += 1
            continue
        language = corpus_filters.language_of(path, cpp_package=cpp)
        assert language is not None  # want() kept only paths with a language
        sig = corpus_dedup.signature(text)
        st.files.append(StagedFile(path, language, text, corpus_dedup.text_sha256(text), sig.tobytes()))
    st.drops = dict(drops)
    if not st.files:
        st.status = "no source files left after filters"
    return st


@functools.cache
def _shipped_tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(SHIPPED_TOKENIZER))


def _licence(spec: PackageSpec, meta: dict[str, bytes], st: Staged):
    """(Licence, DEP-5 stanzas for per-file checks or None); also sets st.version from the metadata."""
    if spec.ecosystem == "pypi":
        info = meta.get("PKG-INFO", b"").decode("utf-8", "replace")
        m = re.search(r"^Version: (.+)$", info, re.M)
        st.version = m.group(1).strip() if m else ""
        return corpus_licenses.pypi_licence(info), None
    if spec.ecosystem == "npm":
        try:
            pj = json.loads(meta.get("package.json", b"{}"))
        except json.JSONDecodeError:
            pj = {}
        st.version = str(pj.get("version", "")) if isinstance(pj, dict) else ""
        return corpus_licenses.npm_licence(pj if isinstance(pj, dict) else {}), None
    st.version = _debian_version(Path(st.archive))
    text = next(iter(meta.values()), b"").decode("utf-8", "replace")
    if not text:
        return corpus_licenses.Licence(False, "", "", "no copyright file in the package"), None
    lic, stanzas = corpus_licenses.debian_licence(text)
    return lic, stanzas


def _stage_path(stage_dir: Path, spec: PackageSpec) -> Path:
    return stage_dir / spec.ecosystem / (corpus_fetch.safe_name(spec.name) + ".msgpack")


def stage_cached(spec: PackageSpec, archive: Path, stage_dir: Path) -> Path:
    """Stage a package unless a staged copy of the same archive (same filters version) exists; returns its path."""
    out = _stage_path(stage_dir, spec)
    if out.exists():
        try:
            old = msgspec.msgpack.decode(out.read_bytes(), type=_StageHeader)
            if old.stage_version == STAGE_VERSION and old.archive == archive.name:
                return out
        except msgspec.DecodeError:
            pass
    try:
        st = stage_package(spec, archive)
    except Exception as e:  # one odd archive must not stop a long build; the package reports why it is empty
        st = Staged(STAGE_VERSION, spec.ecosystem, spec.name, archive.name, status=f"staging failed: {e!r}"[:300])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(msgspec.msgpack.encode(st))
    tmp.replace(out)
    return out


class _StageHeader(msgspec.Struct):
    stage_version: int
    archive: str


# --- manifest and reading API -----------------------------------------------------------------------------------


class ManifestEntry(msgspec.Struct, frozen=True):
    package: str
    ecosystem: str
    version: str
    license: str
    language: str
    path: str  # relative to <root>/files
    source_path: str  # inside the package archive
    sha256: str
    bytes: int
    split: str


@dataclass(frozen=True)
class CorpusFile:
    package: str
    language: str
    path: str
    text: str


def write_manifest(path: Path, entries: Iterable[ManifestEntry]) -> None:
    enc = msgspec.json.Encoder()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for e in entries:
            f.write(enc.encode(e) + b"\n")
    tmp.replace(path)


def read_manifest(path: Path) -> list[ManifestEntry]:
    return parse_manifest(Path(path).read_bytes())


def parse_manifest(data: bytes) -> list[ManifestEntry]:
    """A manifest.jsonl's entries from its bytes (a caller that also hashes the manifest reads it once)."""
    dec = msgspec.json.Decoder(ManifestEntry)
    return [dec.decode(line) for line in data.splitlines() if line.strip()]


def load(
    root: Path | str = DEFAULT_ROOT,
    split: str = "train",
    languages: Iterable[str] | None = None,
    where: Callable[[ManifestEntry], bool] | None = None,
    entries: Sequence[ManifestEntry] | None = None,
) -> Iterator[CorpusFile]:
    """The files of one split in manifest order (only `languages`, only entries `where` accepts); raises
    CorpusMismatch for a file that is missing or changed. `entries`: the root's manifest already read (a caller
    loading several splits parses it once)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    root = Path(root).expanduser()
    wanted = set(languages) if languages is not None else None
    for e in read_manifest(root / MANIFEST_NAME) if entries is None else entries:
        if e.split != split or (wanted is not None and e.language not in wanted) or (where and not where(e)):
            continue
        p = root / FILES_DIR / e.path
        try:
            data = p.read_bytes()
        except OSError as err:
            raise CorpusMismatch(f"{e.path}: {err.strerror} (rebuild the corpus)") from err
        if hashlib.sha256(data).hexdigest() != e.sha256:
            raise CorpusMismatch(f"{e.path}: content differs from the manifest (rebuild the corpus)")
        yield CorpusFile(e.package, e.language, e.path, data.decode("utf-8"))


# --- build ------------------------------------------------------------------------------------------------------


@dataclass
class BuildOptions:
    out: Path
    cache: Path
    packages: Path = PACKAGES_TOML
    workers: int = 2  # staging processes (CPU); downloads use fetch_workers threads
    fetch_workers: int = 4  # pip download threads
    retry_failed: bool = False
    limit: int = 0  # first N packages only (a quick trial); 0 = all
    budget_s: float = 0.0  # after this long, start no new download (0 = no limit); what is missing is reported
    offline: bool = False  # only archives already in the cache
    started: float = field(default_factory=time.time)
    log: list[str] = field(default_factory=list)


def heldout_texts(path: Path = HELDOUT_DIR / "sources.json.gz") -> dict[str, str]:
    if not path.exists():
        raise CorpusError(f"{path} is missing: the held-out sources are needed to keep their copies out")
    return json.loads(gzip.decompress(path.read_bytes()))


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(opts: BuildOptions) -> dict:
    t0 = opts.started
    timings: dict[str, float] = {}
    specs = load_packages(opts.packages)
    if opts.limit:
        specs = specs[: opts.limit]
    _say(f"{len(specs)} packages in {opts.packages.name}; cache {opts.cache}")

    fetched, staged_paths = _fetch_and_stage(specs, opts)
    timings["fetch_and_stage_s"] = time.time() - t0
    ok = sum(1 for f in fetched.values() if f.archive)
    _say(f"fetched {ok}/{len(specs)} and staged them in {timings['fetch_and_stage_s']:.0f} s")

    t2 = time.time()
    report = _assemble(specs, fetched, staged_paths, opts)
    timings["dedup_write_s"] = time.time() - t2
    t3 = time.time()
    _estimate_tokens(opts.out, report)
    timings["tokens_s"] = time.time() - t3
    timings["total_s"] = time.time() - t0
    report["timings"] = {k: round(v, 1) for k, v in timings.items()}
    report["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (opts.out / BUILD_NAME).write_text(json.dumps(report, indent=1) + "\n")
    _say(f"corpus v2 built in {timings['total_s']:.0f} s ({timings['total_s'] / 60:.1f} min) -> {opts.out}")
    print(format_summary(report))
    return report


# Staging takes packages from these queues in turn, so that a time budget that ends the build early cuts
# every ecosystem a little rather than one ecosystem entirely (thousands of small Debian packages arrive first).
STAGE_TURNS = ("pypi", "debian", "npm", "debian")


def _fetch_single(cache: Path, spec: PackageSpec, retry_failed: bool, deadline: float) -> list[corpus_fetch.Fetched]:
    return [corpus_fetch.fetch_one(cache, spec.ecosystem, spec.name, retry_failed, deadline)]


def _fetch_and_stage(
    specs: list[PackageSpec], opts: BuildOptions
) -> tuple[dict[tuple[str, str], corpus_fetch.Fetched], dict[tuple[str, str], Path]]:
    """Download in threads (the clients are processes) and stage packages in processes as soon as they are
    there, so reading archives overlaps with the slow sdist downloads."""
    downloads, stage_dir = opts.cache / "downloads", opts.cache / "stage"
    # a deadline in the past fetches nothing new: only archives already in the cache are used
    deadline = 1.0 if opts.offline else opts.started + opts.budget_s if opts.budget_s else 0.0
    by_key = {(s.ecosystem, s.name): s for s in specs}
    debian = [s.name for s in specs if s.ecosystem == "debian"]
    fetched: dict[tuple[str, str], corpus_fetch.Fetched] = {}
    staged: dict[tuple[str, str], Path] = {}
    queues: dict[str, deque[tuple[PackageSpec, Path]]] = {eco: deque() for eco in STAGE_TURNS}
    turn = 0
    with (
        ThreadPoolExecutor(opts.fetch_workers) as pip_threads,
        ThreadPoolExecutor(2) as other_threads,
        # forkserver, not fork: a worker forked while a download thread runs a client would inherit that client's
        # pipe, and the thread would wait for an end of file that never comes
        ProcessPoolExecutor(opts.workers, mp_context=multiprocessing.get_context("forkserver")) as procs,
    ):
        # pip is the slowest client: it gets its own threads so that apt and npm downloads, and staging, go on
        fetching: set[Future[Any]] = {
            other_threads.submit(
                corpus_fetch.fetch_debian_batch, downloads, debian[i : i + n], opts.retry_failed, deadline
            )
            for n in (corpus_fetch.APT_BATCH,)
            for i in range(0, len(debian), n)
        }
        fetching |= {
            (pip_threads if s.ecosystem == "pypi" else other_threads).submit(
                _fetch_single, downloads, s, opts.retry_failed, deadline
            )
            for s in specs
            if s.ecosystem != "debian"
        }
        staging: dict[Future[Any], tuple[str, str]] = {}
        while fetching or staging or any(queues.values()):
            while len(staging) < 2 * opts.workers and any(queues.values()):
                eco = STAGE_TURNS[turn % len(STAGE_TURNS)]
                turn += 1
                if queues[eco]:
                    spec, archive = queues[eco].popleft()
                    fut = procs.submit(stage_cached, spec, archive, stage_dir)
                    staging[fut] = (spec.ecosystem, spec.name)
            done, _ = wait(fetching | set(staging), return_when=FIRST_COMPLETED)
            for job in done:
                if job in staging:
                    staged[staging.pop(job)] = job.result()
                    if len(staged) % 250 == 0:
                        _say(f"staged {len(staged)} packages ({len(fetched)}/{len(specs)} fetched)")
                    continue
                fetching.discard(job)
                for f in job.result():
                    key = (f.ecosystem, f.name)
                    fetched[key] = f
                    if f.archive is not None:
                        queues[f.ecosystem].append((by_key[key], f.archive))
    return fetched, staged


def _assemble(
    specs: list[PackageSpec],
    fetched: dict[tuple[str, str], corpus_fetch.Fetched],
    staged_paths: dict[tuple[str, str], Path],
    opts: BuildOptions,
) -> dict:
    """Dedup across packages (held-out sources first, then train, then validation packages) and write files."""
    dd = corpus_dedup.Deduplicator()
    for heldout_key, text in sorted(heldout_texts().items()):
        dd.offer(f"heldout:{heldout_key}", corpus_dedup.text_sha256(text), corpus_dedup.signature(text))
    order = sorted(specs, key=lambda s: (split_of(s.ecosystem, s.name, s.split) != "train", s.ecosystem, s.name))
    files_tmp = opts.out / (FILES_DIR + ".tmp")
    if files_tmp.exists():
        shutil.rmtree(files_tmp)
    files_tmp.mkdir(parents=True)
    entries: list[ManifestEntry] = []
    packages: list[dict] = []
    drops: Counter[str] = Counter()
    dup_of_heldout = 0
    for spec in order:
        key = (spec.ecosystem, spec.name)
        split = split_of(spec.ecosystem, spec.name, spec.split)
        info: dict = {"ecosystem": spec.ecosystem, "name": spec.name, "split": split}
        packages.append(info)
        f = fetched.get(key, corpus_fetch.Fetched(spec.ecosystem, spec.name, None, "no answer from the client"))
        if f.archive is None:
            info["status"] = f"not fetched: {f.error[-200:]}"
            continue
        staged_path = staged_paths.get(key)
        if staged_path is None:
            info["status"] = "not staged"
            continue
        st = msgspec.msgpack.decode(staged_path.read_bytes(), type=Staged)
        info.update(version=st.version, license=st.licence, license_metadata=st.licence_evidence, status=st.status)
        drops.update(st.drops)
        kept = 0
        pkg_dir = f"{split}/{spec.ecosystem}/{corpus_fetch.safe_name(spec.name)}"
        for sf in st.files:
            sig = np.frombuffer(sf.signature, dtype=np.uint32)
            dup = dd.offer(f"{spec.ecosystem}:{spec.name}/{sf.path}", sf.sha256, sig)
            if dup:
                drops[f"duplicate-{dup[0]}"] += 1
                dup_of_heldout += dup[1].startswith("heldout:")
                continue
            rel = f"{pkg_dir}/{sf.path}"
            target = files_tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = sf.text.encode("utf-8")
            target.write_bytes(data)
            entries.append(
                ManifestEntry(
                    spec.name,
                    spec.ecosystem,
                    st.version,
                    st.licence,
                    sf.language,
                    rel,
                    sf.path,
                    sf.sha256,
                    len(data),
                    split,
                )
            )
            kept += 1
        info["files"] = kept
    final = opts.out / FILES_DIR
    if final.exists():
        shutil.rmtree(final)
    files_tmp.replace(final)
    write_manifest(opts.out / MANIFEST_NAME, entries)
    return {
        "version": 2,
        "packages_toml": str(opts.packages.relative_to(REPO)) if opts.packages.is_relative_to(REPO) else "",
        "split_rule": f"sha256('{SPLIT_SALT}:' + family + ':' + project) mod {SPLIT_MODULUS} == 0 -> validation",
        "dedup": {
            "exact": "sha256 of the text",
            "near": f"MinHash {corpus_dedup.NUM_PERM} perms over {corpus_dedup.SHINGLE}-token shingles, "
            f"LSH {corpus_dedup.BANDS}x{corpus_dedup.ROWS}, estimated Jaccard >= {corpus_dedup.THRESHOLD}",
            "order": "held-out benchmark sources, then train packages, then validation packages (first kept)",
            "dropped_as_copies_of_heldout_sources": dup_of_heldout,
        },
        "dropped_files": dict(sorted(drops.items())),
        "packages": packages,
        "counts": _counts(entries),
    }


def _counts(entries: Iterable[ManifestEntry]) -> dict:
    c: dict = defaultdict(lambda: defaultdict(lambda: {"files": 0, "bytes": 0, "packages": set()}))
    for e in entries:
        d = c[e.split][e.language]
        d["files"] += 1
        d["bytes"] += e.bytes
        d["packages"].add((e.ecosystem, e.package))
    return {
        split: {lang: {**d, "packages": len(d["packages"])} for lang, d in sorted(langs.items())}
        for split, langs in sorted(c.items())
    }


# Tokenizing costs ten times more than everything else per byte, so train tokens are measured on a fixed 1 in
# TOKEN_SAMPLE share of the files (by sha256) and scaled by bytes; validation is counted whole.
TOKEN_SAMPLE = 8


def _sampled(e: ManifestEntry) -> bool:
    return e.split == "validation" or int(e.sha256[:8], 16) % TOKEN_SAMPLE == 0


def _estimate_tokens(root: Path, report: dict) -> None:
    """Add `tokens` (shipped tokenizer) to every split/language of report["counts"]."""
    tok = _shipped_tokenizer()
    sample: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # bytes, tokens, files
    batch: list[ManifestEntry] = []

    def flush() -> None:
        texts = [(root / FILES_DIR / e.path).read_text("utf-8") for e in batch]
        for e, enc in zip(batch, tok.encode_batch(texts, add_special_tokens=False), strict=True):
            acc = sample[(e.split, e.language)]
            acc[0] += e.bytes
            acc[1] += len(enc.ids)
            acc[2] += 1
        batch.clear()

    for e in read_manifest(root / MANIFEST_NAME):
        if _sampled(e):
            batch.append(e)
            if len(batch) >= 256:
                flush()
    if batch:
        flush()
    for split, langs in report["counts"].items():
        for lang, d in langs.items():
            sb, st, sf = sample.get((split, lang), [0, 0, 0])
            d["tokens"] = round(d["bytes"] * st / sb) if sb else 0
            d["tokens_counted_files"] = sf
    report["tokens"] = (
        f"engine/embedded/tokenizer.json (the shipped 8k BPE); validation counted whole, train measured on the "
        f"files whose sha256 mod {TOKEN_SAMPLE} is 0 and scaled by bytes per language"
    )


def format_summary(report: dict) -> str:
    """Markdown table of files / MB / M tokens per language and split."""
    counts = report["counts"]
    langs = sorted({lang for split in counts.values() for lang in split})
    lines = [
        "| language | train files | train MB | train M tokens | validation files | validation MB | val M tokens |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    tot: Counter[str] = Counter()
    for lang in langs:
        row = [lang]
        for split in SPLITS:
            d = {"files": 0, "bytes": 0, "tokens": 0, **counts.get(split, {}).get(lang, {})}
            row += [str(d["files"]), f"{d['bytes'] / 1e6:.1f}", f"{d['tokens'] / 1e6:.2f}"]
            tot.update({f"{split}-files": d["files"], f"{split}-bytes": d["bytes"], f"{split}-tokens": d["tokens"]})
        lines.append("| " + " | ".join(row) + " |")
    row = ["**all**"]
    for split in SPLITS:
        row += [str(tot[f"{split}-files"]), f"{tot[f'{split}-bytes'] / 1e6:.1f}", f"{tot[f'{split}-tokens'] / 1e6:.2f}"]
    lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def summary_for_git(report: dict) -> dict:
    """What is committed: counts and per-package outcome counts, not the file list."""
    status = Counter(
        "ok" if p.get("status") == "ok" else p.get("status", "?").split(":")[0] for p in report["packages"]
    )
    licences = Counter(p.get("license", "") for p in report["packages"] if p.get("status") == "ok")
    used = [p for p in report["packages"] if p.get("status") == "ok" and p.get("files")]
    return {
        "built_at": report.get("built_at"),
        "timings_s": report.get("timings"),
        "split_rule": report["split_rule"],
        "dedup": report["dedup"],
        "packages_listed": len(report["packages"]),
        "package_outcomes": dict(status.most_common()),
        "packages_used": {split: Counter(p["ecosystem"] for p in used if p["split"] == split) for split in SPLITS},
        "licences_of_used_packages": dict(licences.most_common()),
        "dropped_files": report["dropped_files"],
        "counts": report["counts"],
        "validation_packages": sorted(f"{p['ecosystem']}:{p['name']}" for p in used if p["split"] == "validation"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="download, filter, dedup, split, write the corpus")
    b.add_argument("--out", type=Path, default=DEFAULT_ROOT)
    b.add_argument("--cache", type=Path, default=None, help="downloads + staged packages (default: <out>/../cache)")
    b.add_argument("--packages", type=Path, default=PACKAGES_TOML)
    b.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    b.add_argument("--fetch-workers", type=int, default=4, help="parallel pip downloads")
    b.add_argument("--retry-failed", action="store_true", help="retry downloads that failed in an earlier run")
    b.add_argument("--limit", type=int, default=0, help="only the first N packages (a quick trial)")
    b.add_argument("--budget-min", type=float, default=0, help="start no new download after this many minutes")
    b.add_argument("--offline", action="store_true", help="use only the archives already in the download cache")
    s = sub.add_parser("summary", help="print the counts; --out writes the summary that is committed")
    s.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    s.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.cmd == "build":
        out = args.out.expanduser()
        cache = (args.cache or out.parent / "cache").expanduser()
        out.mkdir(parents=True, exist_ok=True)
        try:
            build(
                BuildOptions(
                    out,
                    cache,
                    args.packages,
                    args.workers,
                    args.fetch_workers,
                    args.retry_failed,
                    args.limit,
                    args.budget_min * 60,
                    args.offline,
                )
            )
        except CorpusError as e:
            print(f"corpus_v2: {e}", file=sys.stderr)
            return 1
        return 0
    report = json.loads((args.root.expanduser() / BUILD_NAME).read_text())
    print(format_summary(report))
    if args.out:
        args.out.write_text(json.dumps(summary_for_git(report), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
