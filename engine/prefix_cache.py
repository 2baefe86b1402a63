"""Prompt KV reuse across keystrokes: encode only what changed since a cached prompt, within a byte cap (LRU).

A lookup takes the cached prompt with the longest common prefix, rewinds a copy of its cache to that prefix
(engine.cache.KVCache.truncate keeps a few hundred spare sliding rows for this) and encodes only the remaining
tokens. KVCache tensors are never written in place, so a stored entry and the copy handed out share memory until
the caller appends to its copy (e.g. a committed canvas), which never touches the stored entry.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from engine.cache import CacheError, KVCache


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


def storage_bytes(caches) -> int:
    """Bytes held by the caches' tensors, counting each shared storage once (truncated views keep their base)."""
    seen, total = set(), 0
    for cache in caches:
        for t in cache.keys + cache.values:
            if t is None:
                continue
            s = t.untyped_storage()
            if s.data_ptr() not in seen:
                seen.add(s.data_ptr())
                total += s.nbytes()
    return total


class PrefixCache:
    """`encode(ids)` -> a KVCache holding ids (batch 1), reusing the longest cached prefix."""

    def __init__(self, model, max_bytes: int = 1 << 30):
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.model = model
        self.max_bytes = max_bytes
        self.entries: OrderedDict[tuple[int, ...], tuple[torch.Tensor, KVCache]] = OrderedDict()
        self.stats = ReuseStats()

    def encode(self, ids: torch.Tensor) -> KVCache:
        ids = torch.as_tensor(ids, dtype=torch.long).cpu()
        if ids.ndim == 2 and ids.shape[0] == 1:
            ids = ids[0]
        if ids.ndim != 1 or ids.numel() == 0:
            raise ValueError(f"expected a non-empty prompt of shape [P] or [1, P], got {tuple(ids.shape)}")
        cache, reused = self._reuse(ids)
        device = next(self.model.parameters()).device
        if reused < ids.numel():
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

    def nbytes(self) -> int:
        return storage_bytes(c for _, c in self.entries.values())

    # -- internals ----------------------------------------------------------------------------------------
    def _reuse(self, ids: torch.Tensor) -> tuple[KVCache | None, int]:
        """Best usable cached prefix: (a private copy rewound to it, its length), or (None, 0)."""
        ranked = sorted(((common_prefix(key_ids, ids), key) for key, (key_ids, _) in self.entries.items()),
                        reverse=True)
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
            del self.entries[old]
        self.entries[key] = (ids, cache.clone())
        self.entries.move_to_end(key)
        while self.entries and self.nbytes() > self.max_bytes:
            self.entries.popitem(last=False)
            self.stats.evictions += 1
