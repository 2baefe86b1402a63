"""Prompt KV reuse across keystrokes: encode only what changed since a cached prompt, within a byte cap (LRU).

A lookup takes the cached prompt with the longest common prefix, rewinds a copy of its cache to that prefix
(dcopilot.engine.runtime.cache.KVCache.truncate keeps a few hundred spare sliding rows for this) and encodes only the
remaining tokens. KVCache tensors are never written in place, so a stored entry and the copy handed out share memory
until the caller appends to its copy (e.g. a committed canvas), which never touches the stored entry.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from dcopilot.engine.runtime.cache import CacheError, KVCache


@dataclass
class ReuseStats:
    hits: int = 0  # lookups that reused at least one cached token
    misses: int = 0
    last_reused: int = 0  # tokens taken from the cache by the last lookup
    last_encoded: int = 0  # tokens run through the encoder by the last lookup
    evictions: int = 0


def common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    """Length of the longest common prefix of two 1-D id tensors."""
    n = min(a.numel(), b.numel())
    if n == 0:
        return 0
    diff = (a[:n] != b[:n]).nonzero()
    return int(diff[0]) if diff.numel() else n


def _storages(cache: KVCache) -> dict[int, int]:
    """The distinct storages under a cache's tensors: data pointer -> bytes (truncated views keep their base)."""
    out: dict[int, int] = {}
    for t in cache.keys + cache.values:
        if t is not None:
            s = t.untyped_storage()
            out[s.data_ptr()] = s.nbytes()
    return out


def storage_bytes(caches) -> int:
    """Bytes held by the caches' tensors, counting each shared storage once."""
    seen: dict[int, int] = {}
    for cache in caches:
        seen.update(_storages(cache))
    return sum(seen.values())


class PrefixCache:
    """`encode(ids)` -> a KVCache holding ids (batch 1), reusing the longest cached prefix."""

    def __init__(self, model, max_bytes: int = 1 << 30):
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.model = model
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], tuple[torch.Tensor, KVCache]] = OrderedDict()
        self.stats = ReuseStats()
        # A running total, so eviction never re-sums the entries: storage -> [bytes, entries using it].
        self._held: dict[int, list[int]] = {}
        self._bytes = 0

    def encode(self, ids: torch.Tensor) -> KVCache:
        ids = torch.as_tensor(ids, dtype=torch.long).cpu()
        if ids.ndim == 2 and ids.shape[0] == 1:
            ids = ids[0]
        if ids.ndim != 1 or ids.numel() == 0:
            raise ValueError(f"expected a non-empty prompt of shape [P] or [1, P], got {tuple(ids.shape)}")
        cache, reused = self._reuse(ids)
        device = next(self.model.parameters()).device
        if cache is None or reused < ids.numel():  # None only when nothing was reused
            rest = ids[reused:].to(device)[None]
            cache = self.model.encode(rest, cache) if cache is not None else self.model.encode(rest)
        self.stats.last_reused, self.stats.last_encoded = reused, ids.numel() - reused
        if reused:
            self.stats.hits += 1
        else:
            self.stats.misses += 1
        self._store(ids, cache)
        return cache.clone()

    def clear(self) -> None:
        self.entries.clear()
        self._held.clear()
        self._bytes = 0

    def nbytes(self) -> int:
        return self._bytes

    # -- internals ----------------------------------------------------------------------------------------
    def _reuse(self, ids: torch.Tensor) -> tuple[KVCache | None, int]:
        """Best usable cached prefix: (a private copy rewound to it, its length), or (None, 0)."""
        ranked = sorted(
            ((common_prefix(key_ids, ids), key) for key, (key_ids, _) in self.entries.items()), reverse=True
        )
        for n, key in ranked:
            if n == 0:
                break
            cache = self.entries[key][1].clone()
            try:
                cache.truncate(n)
            except CacheError:  # the sliding layers no longer hold the rows before position n
                continue
            self.entries.move_to_end(key)
            return cache, n
        return None, 0

    def _store(self, ids: torch.Tensor, cache: KVCache) -> None:
        key = tuple(ids.tolist())
        # A cached prompt that the new one extends is dominated: any prompt it could serve, the new one serves
        # by rewinding, unless the rewind is longer than the spare sliding rows.
        for old in [k for k in self.entries if len(k) < len(key) and key[: len(k)] == k]:
            self._drop(old)
        if key in self.entries:
            self._drop(key)
        self.entries[key] = (ids, cache.clone())
        self._count(self.entries[key][1], +1)
        while self.entries and self._bytes > self.max_bytes:
            self._drop(next(iter(self.entries)))
            self.stats.evictions += 1

    def _drop(self, key: tuple[int, ...]) -> None:
        _, cache = self.entries.pop(key)
        self._count(cache, -1)

    def _count(self, cache: KVCache, sign: int) -> None:
        for ptr, size in _storages(cache).items():
            held = self._held.setdefault(ptr, [size, 0])
            if held[1] == 0:
                self._bytes += size
            held[1] += sign
            if held[1] == 0:
                self._bytes -= held[0]
                del self._held[ptr]
