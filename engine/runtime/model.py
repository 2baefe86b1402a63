"""DiffusionGemma in plain PyTorch: one set of weights, two modes.

- encoder mode (`encode`): causal attention over the prompt (or a committed canvas); writes the KV cache.
- denoiser mode (`denoise`): the canvas attends bidirectionally to itself and to the cache, never writing it;
  its input embeddings pass through the self-conditioning MLP fed with the previous step's soft prediction.

Notable features (docs/model.md describes the forward pass in full):
sliding layers (window W, own head dim and KV heads, full RoPE) and full layers (K=V, proportional partial RoPE);
q/k RMSNorm with weights, v RMSNorm without; attention scale 1.0; an MoE block per layer (router on the raw
residual, fused gate_up/down experts, a dense MLP beside them, seven norms) whose output is scaled by
`layer_scalar`; tied LM head; logits soft-capped in float32. The checkpoint stores `layer_scalar` once per mode
(encoder and decoder copies; the other weights are shared): each mode multiplies by its own copy.
Denoiser sliding-window semantics follow the transformers reference: every canvas query sees the last W-1
cached tokens plus the whole canvas.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from dcopilot.engine.runtime.cache import KVCache
from dcopilot.engine.runtime.config import GenerationConfig, TextConfig
from dcopilot.engine.runtime.fast import grouped_experts
from torch import nn

# What a block's queries attend to: keys and values [B, KV, N, D] and a bool mask broadcastable to [B, H, T, N].
Visible = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
# A block's own keys and values -> what it attends to (None: stop after writing K/V); see Layer.forward.
Context = Callable[[torch.Tensor, torch.Tensor], Visible | None]

if TYPE_CHECKING:
    from dcopilot.engine.runtime.tokenizer import Tokenizer

# One grouped matmul for all experts, no host sync; torch builds without it use the per-expert loop.
GROUPED_MM = hasattr(torch, "_grouped_mm")


class RMSNorm(nn.Module):
    """x * (mean(x^2) + eps)^-1/2 in float32, times a plain weight (not 1 + w)."""

    def __init__(self, dim: int, eps: float, with_scale: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if with_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.pow(h.pow(2).mean(-1, keepdim=True) + self.eps, -0.5)
        if self.weight is not None:
            h = h * self.weight.float()
        return h.type_as(x)


def gated_mlp(x: torch.Tensor, gate: nn.Linear, up: nn.Linear, down: nn.Linear) -> torch.Tensor:
    return down(F.gelu(gate(x), approximate="tanh") * up(x))


def rope_inv_freq(head_dim: int, theta: float, rotary_fraction: float, sliding: bool) -> torch.Tensor:
    """Inverse frequencies for head_dim/2 pairs. Full layers use "proportional" RoPE: only the first
    int(fraction * head_dim / 2) pairs rotate (exponent over the whole head_dim), the rest get frequency 0."""
    if sliding:
        dim = int(head_dim * rotary_fraction)
        return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    rotated = int(rotary_fraction * head_dim // 2)
    inv = 1.0 / (theta ** (torch.arange(0, 2 * rotated, 2, dtype=torch.float) / head_dim))
    return torch.cat([inv, torch.zeros(head_dim // 2 - rotated)])


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """NeoX split-half rotation; x [B, T, H, D], cos/sin [B or 1, T, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, :, None] + rotated * sin[:, :, None]


class Attention(nn.Module):
    def __init__(self, config: TextConfig, layer: int):
        super().__init__()
        g = config.layer(layer)
        self.sliding, self.head_dim, self.num_heads, self.num_kv = (
            g.sliding,
            g.head_dim,
            config.num_attention_heads,
            g.num_kv_heads,
        )
        h = config.hidden_size
        self.q_proj = nn.Linear(h, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.num_kv * self.head_dim, bias=False)
        # Full layers have no v_proj: V is the raw K projection (K=V), normalised separately.
        self.v_proj = nn.Linear(h, self.num_kv * self.head_dim, bias=False) if g.sliding else None
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, h, bias=False)
        self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.v_norm = RMSNorm(self.head_dim, config.rms_norm_eps, with_scale=False)

    def kv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (normed, rotated) and values (normed) as [B, KV, T, D]."""
        B, T, _ = x.shape
        k_raw = self.k_proj(x).view(B, T, self.num_kv, self.head_dim)
        v_raw = self.v_proj(x).view(B, T, self.num_kv, self.head_dim) if self.v_proj is not None else k_raw
        k = apply_rope(self.k_norm(k_raw), cos, sin).transpose(1, 2)
        v = self.v_norm(v_raw).transpose(1, 2)
        return k, v

    def query(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.num_heads, self.head_dim)
        return apply_rope(self.q_norm(q), cos, sin).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, _, T, _ = q.shape
        if k.shape[0] != B:  # several canvases (hypotheses) reading one prompt's cache
            k, v = k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=1.0, enable_gqa=self.num_heads != self.num_kv
        )
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))


class Router(nn.Module):
    def __init__(self, config: TextConfig):
        super().__init__()
        self.top_k = config.top_k_experts
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, with_scale=False)
        self.proj = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        self.scale = nn.Parameter(torch.ones(config.hidden_size))
        self.per_expert_scale = nn.Parameter(torch.ones(config.num_experts))
        self.root = config.hidden_size**-0.5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k expert indices and weights for [N, H] residual states (softmax over all experts, renormalised)."""
        probs = torch.softmax(self.proj(self.norm(x) * self.scale * self.root), dim=-1, dtype=torch.float32)
        weights, index = torch.topk(probs, self.top_k, dim=-1)
        weights = weights / weights.sum(-1, keepdim=True)
        return weights * self.per_expert_scale[index], index


class Experts(nn.Module):
    """Fused expert weights as stored in the checkpoint: gate_up_proj [E, 2I, H] (gate rows first),
    down_proj [E, H, I]."""

    def __init__(self, config: TextConfig):
        super().__init__()
        E, I, H = config.num_experts, config.moe_intermediate_size, config.hidden_size  # noqa: E741 - the docstring's names
        self.gate_up_proj = nn.Parameter(torch.empty(E, 2 * I, H))
        self.down_proj = nn.Parameter(torch.empty(E, H, I))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if GROUPED_MM:
            return grouped_experts(x, weights, index, self.gate_up_proj, self.down_proj)
        return self.forward_loop(x, weights, index)

    def forward_loop(self, x: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Tokens grouped by expert (sorted once), one matmul pair per expert that has tokens; reads the
        per-expert counts on the host, so it is the fallback for torch builds without grouped matmuls."""
        K = index.shape[1]
        flat = index.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.gate_up_proj.shape[0]).tolist()
        token = order // K
        out = torch.zeros_like(x)
        start = 0
        for e, n in enumerate(counts):
            if n == 0:
                continue
            sel = order[start : start + n]
            rows = token[start : start + n]
            start += n
            gate, up = F.linear(x[rows], self.gate_up_proj[e]).chunk(2, dim=-1)
            y = F.linear(F.gelu(gate, approximate="tanh") * up, self.down_proj[e])
            y = y * weights.reshape(-1)[sel, None].to(y.dtype)
            out = out.index_add(0, rows, y.to(out.dtype))
        return out


class DenseMLP(nn.Module):
    """The dense half of the feed-forward: the checkpoint's mlp.{gate,up,down}_proj."""

    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)


class Layer(nn.Module):
    layer_scalar: torch.Tensor  # a buffer
    encoder_layer_scalar: torch.Tensor  # a non-persistent buffer (the loader fills it)

    def __init__(self, config: TextConfig, layer: int):
        super().__init__()
        h, eps = config.hidden_size, config.rms_norm_eps
        self.self_attn = Attention(config, layer)
        self.mlp = DenseMLP(h, config.intermediate_size)
        self.router = Router(config)
        self.experts: nn.Module = Experts(
            config
        )  # dcopilot.engine.runtime.fast and dcopilot.engine.runtime.quant swap it for their own
        self.input_layernorm = RMSNorm(h, eps)
        self.post_attention_layernorm = RMSNorm(h, eps)
        self.pre_feedforward_layernorm = RMSNorm(h, eps)  # dense MLP in
        self.post_feedforward_layernorm_1 = RMSNorm(h, eps)  # dense MLP out
        self.pre_feedforward_layernorm_2 = RMSNorm(h, eps)  # experts in
        self.post_feedforward_layernorm_2 = RMSNorm(h, eps)  # experts out
        self.post_feedforward_layernorm = RMSNorm(h, eps)  # sum out
        self.register_buffer("layer_scalar", torch.ones(1))  # the decoder's (denoiser mode)
        # The encoder's copy: equal in the released checkpoint, but a fine-tune may change one mode's only. Not in
        # the state dict (whose names are the decoder's); the loader fills it from the encoder's tensor.
        self.register_buffer("encoder_layer_scalar", torch.ones(1), persistent=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, context: Context, encoding: bool = False
    ) -> torch.Tensor | None:
        """One block: attention over context(own keys, values), then the dense MLP and the experts.

        context(k, v) -> (keys, values, mask) that the queries attend to: the cache's rows joined with these
        positions' own K/V. It returns None when the caller needed only this block's K/V (the block stops there)."""
        attn = self.self_attn
        h = self.input_layernorm(x)
        visible = context(*attn.kv(h, cos, sin))
        if visible is None:
            return None
        out = attn.attend(attn.query(h, cos, sin), *visible)
        scalar = self.encoder_layer_scalar if encoding else self.layer_scalar
        return self.feed_forward(x + self.post_attention_layernorm(out), scalar)

    def feed_forward(self, r: torch.Tensor, scalar: torch.Tensor | None = None) -> torch.Tensor:
        """The MoE block on residual r, times `scalar` (default: the decoder's layer_scalar)."""
        dense = self.post_feedforward_layernorm_1(
            gated_mlp(self.pre_feedforward_layernorm(r), self.mlp.gate_proj, self.mlp.up_proj, self.mlp.down_proj)
        )
        flat = r.reshape(-1, r.shape[-1])
        weights, index = self.router(flat)  # routed on the raw residual, not the normed one
        moe = self.experts(self.pre_feedforward_layernorm_2(flat), weights, index).reshape(r.shape)
        moe = self.post_feedforward_layernorm_2(moe)
        # layer_scalar scales the whole residual stream, not just the block's output.
        return (r + self.post_feedforward_layernorm(dense + moe)) * (self.layer_scalar if scalar is None else scalar)


class SelfConditioning(nn.Module):
    def __init__(self, config: TextConfig):
        super().__init__()
        h = config.hidden_size
        self.pre_norm = RMSNorm(h, config.rms_norm_eps)
        self.post_norm = RMSNorm(h, config.rms_norm_eps, with_scale=False)
        self.gate_proj = nn.Linear(h, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(h, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, h, bias=False)

    def forward(self, embeds: torch.Tensor, soft: torch.Tensor | None) -> torch.Tensor:
        if soft is None:  # first step: the MLP of zeros is exactly zero (no biases)
            return self.post_norm(embeds)
        normed = self.pre_norm(soft)
        return self.post_norm(embeds + gated_mlp(normed, self.gate_proj, self.up_proj, self.down_proj))


class DiffusionGemma(nn.Module):
    """The text model. Parameter names match the checkpoint's `model.decoder.*` tensors minus that prefix."""

    def __init__(self, config: TextConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Layer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_conditioning = SelfConditioning(config)
        self._embed_scale: tuple = (None, 1.0)
        self.init_rope()
        # Filled by the loader from the checkpoint's files.
        self.generation = GenerationConfig(eos_token_ids=(config.eos_token_id,))
        self.canvas_length = 256
        self.tokenizer: Tokenizer | None = None
        self.extra: dict = {}  # config.json's "dcopilot" section (prompt format of models we train)
        self.path: Path | None = None

    @property
    def blocks(self) -> Sequence[Layer]:
        """`layers` as a type checker should see it (nn.ModuleList types its items as plain Modules)."""
        return cast("Sequence[Layer]", self.layers)

    @property
    def stop_ids(self) -> tuple[int, ...]:
        return self.generation.eos_token_ids

    def init_rope(self, device: torch.device | str | None = None) -> None:
        """(Re)build the non-persistent RoPE tables; needed after building on the meta device."""
        self._inv_freq: dict[tuple[bool, int], torch.Tensor] = {}
        for i in range(self.config.num_hidden_layers):
            g = self.config.layer(i)
            key = (g.sliding, g.head_dim)
            if key not in self._inv_freq:
                self._inv_freq[key] = rope_inv_freq(g.head_dim, g.rope_theta, g.rotary_fraction, g.sliding).to(device)

    # -- shared pieces ----------------------------------------------------------------------------------
    @property
    def embed_scale(self) -> float:
        # sqrt(hidden) rounded to the weight dtype, as the reference does (53.0 in bf16 for hidden 2816); a Python
        # float, so multiplying by it never copies a scalar to the device (a host sync on CUDA).
        dtype = self.embed_tokens.weight.dtype
        if self._embed_scale[0] is not dtype:
            self._embed_scale = (dtype, torch.tensor(self.config.hidden_size**0.5).to(dtype).item())
        return self._embed_scale[1]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(ids) * self.embed_scale

    def rope(self, positions: torch.Tensor, dtype: torch.dtype) -> dict:
        tables = {}
        for key, inv in self._inv_freq.items():
            freqs = positions[None, :, None].float() * inv.to(positions.device)[None, None, :]
            emb = torch.cat([freqs, freqs], dim=-1)
            tables[key] = (emb.cos().to(dtype), emb.sin().to(dtype))
        return tables

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        cap = self.config.final_logit_softcapping
        logits = F.linear(self.norm(hidden), self.embed_tokens.weight).float()
        if logits.requires_grad:  # training: autograd keeps tanh's output, so no in-place update after it
            return torch.tanh(logits / cap) * cap
        # in place: each float32 temporary of a 256-token canvas over a 262k vocabulary is 268 MB at a step's peak
        return logits.div_(cap).tanh_().mul_(cap)

    # -- encoder mode -----------------------------------------------------------------------------------
    def encode(self, ids: torch.Tensor, cache: KVCache | None = None) -> KVCache:
        """Causal forward over ids [B, T] appended after `cache` (a new cache if None); writes K/V, returns the
        cache."""
        cache = cache if cache is not None else KVCache(self.config)
        self._causal(ids, cache, want_hidden=False)
        return cache

    def encode_logits(self, ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Next-token logits of a causal forward (the autoregressive warm-start objective for training)."""
        cache = cache if cache is not None else KVCache(self.config)
        hidden = self._causal(ids, cache, want_hidden=True)
        assert hidden is not None  # want_hidden=True returns it
        return self.logits(hidden)

    def _causal(self, ids: torch.Tensor, cache: KVCache, want_hidden: bool) -> torch.Tensor | None:
        T = ids.shape[1]
        pos = torch.arange(cache.length, cache.length + T, device=ids.device)
        masks: dict[tuple[bool, int], torch.Tensor] = {}
        last = len(self.layers) - 1

        def context(i: int, k: torch.Tensor, v: torch.Tensor) -> Visible | None:
            keys, values, start = cache.extend(i, k, v)
            if i == last and not want_hidden:
                return None  # only its K/V matter to later steps; skip the rest of the last layer
            sliding = self.blocks[i].self_attn.sliding
            if (sliding, start) not in masks:
                masks[sliding, start] = self._causal_mask(pos, start, keys.shape[2], sliding)
            return keys, values, masks[sliding, start]

        x = self._blocks(self.embed(ids), pos, context, encoding=True)
        cache.advance(T)
        return x if want_hidden else None

    def _blocks(self, x: torch.Tensor, pos: torch.Tensor, context, encoding: bool = False) -> torch.Tensor | None:
        """The layer stack at positions pos; context(i, k, v) is layer i's Layer.forward context; encoding picks
        each layer's encoder layer_scalar copy instead of the decoder's."""
        rope = self.rope(pos, x.dtype)
        for i, layer in enumerate(self.blocks):
            cos, sin = rope[(layer.self_attn.sliding, layer.self_attn.head_dim)]
            x = layer(x, cos, sin, functools.partial(context, i), encoding)
            if x is None:
                return None
        return x

    def _causal_mask(self, pos: torch.Tensor, start: int, n_keys: int, sliding: bool) -> torch.Tensor:
        key_pos = torch.arange(start, start + n_keys, device=pos.device)
        allowed = key_pos[None, :] <= pos[:, None]
        if sliding:
            allowed &= key_pos[None, :] > pos[:, None] - self.config.sliding_window
        return allowed

    # -- denoiser mode ----------------------------------------------------------------------------------
    def denoise(
        self,
        canvas: torch.Tensor,
        cache: KVCache,
        self_conditioning_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Soft-capped float32 logits [B, L, V] for canvas [B, L] read against `cache` (not modified).

        `self_conditioning_logits` are the previous step's (temperature-scaled) logits [B, L, V]."""
        L = canvas.shape[1]
        pos = torch.arange(cache.length, cache.length + L, device=canvas.device)
        return self.denoise_at(canvas, pos, lambda i: (*cache.context(i), None), self_conditioning_logits)

    def denoise_at(
        self,
        canvas: torch.Tensor,
        pos: torch.Tensor,
        context,
        self_conditioning_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`denoise` with the canvas positions pos [L] as a tensor and context(i) -> (keys, values, mask) for layer
        i: keys/values [B or 1, KV, N, D] or None, mask None or bool [1, 1, 1, N + L] (False = padding).
        engine/runtime/static.py passes padded keys with a mask, so a compiled step bakes in no cache length."""
        x = self.embed(canvas)
        soft = None
        if self_conditioning_logits is not None:
            w = self.embed_tokens.weight
            probs = torch.softmax(self_conditioning_logits, dim=-1, dtype=torch.float32).to(w.dtype)
            soft = (probs @ w) * self.embed_scale
        x = self.self_conditioning(x, soft)

        def joined(i: int, k: torch.Tensor, v: torch.Tensor) -> Visible:
            ck, cv, mask = context(i)
            if ck is not None:
                if ck.shape[0] != k.shape[0]:
                    ck, cv = ck.expand(k.shape[0], -1, -1, -1), cv.expand(k.shape[0], -1, -1, -1)
                k, v = torch.cat([ck, k], dim=2), torch.cat([cv, v], dim=2)
            return k, v, mask

        h = self._blocks(x, pos, joined)
        assert h is not None, "a denoising context never skips a layer"
        return self.logits(h)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def init_weights(model: DiffusionGemma, std: float = 0.02, generator: torch.Generator | None = None) -> None:
    """Random initialisation for training from scratch (norms 1, matrices N(0, std), layer_scalar 1)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, std, generator=generator)
            else:
                p.fill_(1.0)
        for layer in model.blocks:
            layer.layer_scalar.fill_(1.0)
            layer.encoder_layer_scalar.fill_(1.0)
