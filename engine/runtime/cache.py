"""The causal KV cache that encoder mode writes and denoiser mode reads.

Full-attention layers keep every token. Sliding layers keep the last `window - 1` tokens (all a canvas or a
new token can see) plus `rewind` spare rows, so the prefix cache can step back over a few changed tokens
without re-encoding the whole prompt. Tensors are never written in place: appending concatenates and
truncating slices, which makes `clone()` free and lets autograd flow through the cache during training.
engine/runtime/static.py copies the visible rows into fixed, padded buffers for a compiled step (its docstring says why
that is a second representation and not this one written in place).
"""

from __future__ import annotations

import torch
from dcopilot.engine.runtime.config import TextConfig


class CacheError(RuntimeError):
    """A cache operation that would silently give wrong attention (e.g. rewinding past what was kept)."""


class KVCache:
    def __init__(self, config: TextConfig, rewind: int = 256):
        self.window = config.sliding_window
        self.sliding = [config.layer(i).sliding for i in range(config.num_hidden_layers)]
        self.keep = [self.window - 1 + rewind if s else None for s in self.sliding]
        self.keys: list[torch.Tensor | None] = [None] * len(self.sliding)
        self.values: list[torch.Tensor | None] = [None] * len(self.sliding)
        self.starts = [0] * len(self.sliding)  # absolute position of each layer's first kept row
        self.length = 0  # tokens encoded so far = position of the next token

    # -- writing (encoder mode) -------------------------------------------------------------------------
    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Append [B, KV, T, D] keys/values; return what the new tokens attend to and its first position."""
        old_k, old_v = self.keys[layer], self.values[layer]
        if old_k is None or old_v is None:
            full_k, full_v, start = k, v, self.length
        else:
            full_k, full_v, start = torch.cat([old_k, k], dim=2), torch.cat([old_v, v], dim=2), self.starts[layer]
        keep = self.keep[layer]
        if keep is not None and full_k.shape[2] > keep:
            drop = full_k.shape[2] - keep
            self.keys[layer], self.values[layer] = full_k[:, :, drop:], full_v[:, :, drop:]
            self.starts[layer] = start + drop
        else:
            self.keys[layer], self.values[layer] = full_k, full_v
            self.starts[layer] = start
        return full_k, full_v, start

    def advance(self, n: int) -> None:
        self.length += n

    # -- reading (denoiser mode) ------------------------------------------------------------------------
    def context(self, layer: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """What a canvas sees: every cached token on full layers, the last window-1 on sliding layers."""
        k, v = self.keys[layer], self.values[layer]
        if k is None or v is None or not self.sliding[layer]:
            return k, v
        visible = self.window - 1
        return k[:, :, -visible:], v[:, :, -visible:]

    # -- bookkeeping ------------------------------------------------------------------------------------
    @property
    def batch(self) -> int:
        k = next((k for k in self.keys if k is not None), None)
        return 1 if k is None else k.shape[0]

    def clone(self) -> KVCache:
        other = KVCache.__new__(KVCache)
        other.window, other.sliding, other.keep = self.window, self.sliding, self.keep
        other.keys, other.values = list(self.keys), list(self.values)
        other.starts, other.length = list(self.starts), self.length
        return other

    def truncate(self, n: int) -> None:
        """Forget every token at position >= n (prefix reuse). Raises CacheError if a sliding layer no longer
        holds the window-1 tokens before position n."""
        if n >= self.length:
            return
        if n < 0:
            raise CacheError(f"cannot truncate to {n}")
        for i, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            if k is None or v is None:
                continue
            start = self.starts[i]
            if self.sliding[i] and start > max(0, n - (self.window - 1)):
                raise CacheError(f"layer {i} kept tokens from {start}; cannot rewind to {n}")
            rows = max(0, n - start)
            self.keys[i], self.values[i] = k[:, :, :rows], v[:, :, :rows]
        self.length = n

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.keys + self.values if t is not None)
