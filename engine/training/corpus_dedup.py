"""Duplicate removal for corpus v2: exact (sha256 of the text) and near (MinHash over token shingles, LSH bands).

Near duplicates are files that differ only a little: the same module in two versions of a crate, a copied helper
with another header. Each file becomes a set of 5-token shingles; its MinHash signature (NUM_PERM minima of
independent hash functions over that set) estimates the Jaccard similarity of two sets as the share of equal
positions. LSH splits the signature into BANDS bands of ROWS rows; two files that share a whole band are
candidates (probability 1 - (1 - J^ROWS)^BANDS, about 0.98 at J = 0.85), and a candidate is a duplicate when the
estimated similarity reaches THRESHOLD. Files are offered in a fixed order and the first one of a group is kept.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable

import numpy as np

NUM_PERM = 128
BANDS = 16
ROWS = NUM_PERM // BANDS
THRESHOLD = 0.85
SHINGLE = 5
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|[^\sA-Za-z_0-9]")


def _params(seed: int = 0x5EED) -> tuple[np.ndarray, np.ndarray]:
    # fixed odd multipliers and offsets: the same text gets the same signature on every machine and run
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, 1 << 63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 1 << 63, size=NUM_PERM, dtype=np.uint64)
    return a, b


_A, _B = _params()
_token_cache: dict[str, int] = {}


def _token_ids(text: str) -> np.ndarray:
    cache = _token_cache
    if len(cache) > 2_000_000:  # bounded memory over a long build
        cache.clear()
    ids = []
    for t in _TOKEN.findall(text):
        h = cache.get(t)
        if h is None:
            h = zlib.crc32(t.encode()) | (zlib.adler32(t.encode()) << 32)
            cache[t] = h
        ids.append(h)
    return np.array(ids, dtype=np.uint64)


def shingle_hashes(text: str) -> np.ndarray:
    """64-bit hashes of the distinct SHINGLE-token windows of `text` (the whole text when it is shorter)."""
    ids = _token_ids(text)
    if len(ids) == 0:
        return np.zeros(1, dtype=np.uint64)
    if len(ids) < SHINGLE:
        ids = np.concatenate([ids, np.zeros(SHINGLE - len(ids), dtype=np.uint64)])
    n = len(ids) - SHINGLE + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrap-around multiplication is the polynomial hash mod 2**64
        for k in range(SHINGLE):
            h = h * np.uint64(1_000_003) + ids[k : k + n]
    return np.unique(h)


def signature(text: str) -> np.ndarray:
    """MinHash signature (NUM_PERM uint32) of the text's shingle set."""
    h = shingle_hashes(text)
    out = np.full(NUM_PERM, np.iinfo(np.uint64).max, dtype=np.uint64)
    with np.errstate(over="ignore"):
        # multiply-shift hashing: (a*h + b) mod 2**64, keep the high bits; chunks bound the temporary matrix
        for start in range(0, len(h), 8192):
            chunk = h[start : start + 8192]
            mixed = _A[:, None] * chunk[None, :] + _B[:, None]
            np.minimum(out, mixed.min(axis=1), out=out)
    return (out >> np.uint64(32)).astype(np.uint32)


def similarity(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the two shingle sets."""
    return float(np.mean(sig_a == sig_b))


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Deduplicator:
    """Offer files in order; `offer` says whether a file is new or which kept file it duplicates."""

    def __init__(self) -> None:
        self._exact: dict[str, str] = {}
        self._bands: list[dict[bytes, list[int]]] = [{} for _ in range(BANDS)]
        self._sigs: list[np.ndarray] = []
        self._keys: list[str] = []

    def offer(self, key: str, sha256: str, sig: np.ndarray) -> tuple[str, str] | None:
        """None if the file is new (it is remembered); else ("exact"|"near", key of the earlier file).

        Texts that must never enter the corpus (the held-out benchmark's sources) are offered first, so that
        their copies anywhere in the corpus are dropped as their duplicates.
        """
        if sha256 in self._exact:
            return ("exact", self._exact[sha256])
        bands = [sig[i * ROWS : (i + 1) * ROWS].tobytes() for i in range(BANDS)]
        seen: set[int] = set()
        for table, band in zip(self._bands, bands, strict=True):
            for idx in table.get(band, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                if similarity(sig, self._sigs[idx]) >= THRESHOLD:
                    return ("near", self._keys[idx])
        self._exact[sha256] = key
        idx = len(self._sigs)
        self._sigs.append(sig)
        self._keys.append(key)
        for table, band in zip(self._bands, bands, strict=True):
            table.setdefault(band, []).append(idx)
        return None


def dedup(items: Iterable[tuple[str, str]]) -> dict[str, tuple[str, str] | None]:
    """Convenience for small inputs: (key, text) pairs in order -> key -> None (kept) or (kind, kept key)."""
    d = Deduplicator()
    return {key: d.offer(key, text_sha256(text), signature(text)) for key, text in items}
