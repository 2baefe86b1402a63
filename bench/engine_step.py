"""One denoising step, ours vs the transformers reference, same weights, same cache, same CPU, one run.

The reference is DiffusionGemmaForBlockDiffusion.forward(decoder_input_ids=..., past_key_values=...,
self_conditioning_logits=...) with its default implementations (sdpa attention, grouped_mm experts when available);
ours is dcopilot.engine.runtime.model.DiffusionGemma.denoise as loaded (grouped experts), and with the per-expert
loop that torch builds without grouped matmuls fall back to. Both read a cache of the same prompt; both get the
previous step's logits as self-conditioning (every step but the first).

Config: a small-but-not-tiny DiffusionGemma (6 layers 5 sliding + 1 full, hidden 512, 32 experts top-4 so a
128-token canvas puts ~16 tokens on each expert as the real 256-canvas / 128-expert top-8 model does,
vocab 16384). Usage: python bench/engine_step.py [--threads 1] [--reps 7]
transformers is a bench/test-only oracle; the package never imports it.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

TEXT: dict[str, Any] = dict(
    vocab_size=16384,
    hidden_size=512,
    intermediate_size=1024,
    moe_intermediate_size=256,
    num_experts=32,
    top_k_experts=4,
    num_hidden_layers=6,
    layer_types=["sliding_attention"] * 5 + ["full_attention"],
    num_attention_heads=8,
    num_key_value_heads=4,
    num_global_key_value_heads=1,
    head_dim=64,
    global_head_dim=128,
    sliding_window=256,
    max_position_embeddings=8192,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
)


def build_reference(canvas: int):
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    from bench.gpu_step import VISION

    torch.manual_seed(0)
    config = DiffusionGemmaConfig(text_config=TEXT, vision_config=VISION, canvas_length=canvas, eos_token_id=[1])  # type: ignore[call-arg]  # an extra key PreTrainedConfig keeps
    model = DiffusionGemmaForBlockDiffusion(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "vision" not in name and p.ndim >= 2:
                p.normal_(0.0, 0.05)
    return model


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--canvas", type=int, default=128)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.* when run as a script
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    import dcopilot.engine.runtime.model
    from dcopilot.engine.runtime.loader import load_model

    ref = build_reference(args.canvas)
    with tempfile.TemporaryDirectory() as tmp:
        ref.save_pretrained(Path(tmp))
        (Path(tmp) / "tokenizer.json").write_text(_tokenizer_json(TEXT["vocab_size"]))
        ours = load_model(tmp, device="cpu", dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(5, TEXT["vocab_size"], (1, args.prompt), generator=g)
    canvas = torch.randint(0, TEXT["vocab_size"], (1, args.canvas), generator=g)

    with torch.no_grad():
        ref_cache = ref(input_ids=prompt, decoder_input_ids=canvas).past_key_values
        cache = ours.encode(prompt)
        sc = ours.denoise(canvas, cache) / 0.8  # a realistic previous-step signal

        def ref_step():
            return ref(past_key_values=ref_cache, decoder_input_ids=canvas, self_conditioning_logits=sc).logits

        def our_step():
            return ours.denoise(canvas, cache, self_conditioning_logits=sc)

        def fast_step():  # the fallback path, measured on the same weights
            dcopilot.engine.runtime.model.GROUPED_MM = False
            try:
                return ours.denoise(canvas, cache, self_conditioning_logits=sc)
            finally:
                dcopilot.engine.runtime.model.GROUPED_MM = True

        expected = ref_step()
        err_plain = ((our_step() - expected).abs().max() / expected.abs().max()).item()
        err_fast = ((fast_step() - expected).abs().max() / expected.abs().max()).item()
        # rounds of (reference, ours, ours with the loop), one call each, order rotated per round: load from other
        # processes hits all three alike; ratios are taken within a round, then the median over rounds
        steps = (ref_step, our_step, fast_step)
        rounds = []
        for r in range(args.reps):
            times = [0.0] * 3
            for i in (r % 3, (r + 1) % 3, (r + 2) % 3):
                times[i] = timed(steps[i], 1)[0]
            rounds.append(times)

    t_ref, t_plain, t_fast = ([r[i] for r in rounds] for i in range(3))
    med = {k: statistics.median(v) * 1e3 for k, v in (("ref", t_ref), ("plain", t_plain), ("fast", t_fast))}
    ratio_plain = statistics.median(r[0] / r[1] for r in rounds)
    ratio_fast = statistics.median(r[0] / r[2] for r in rounds)
    print(
        f"hardware: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s); float32; prompt {args.prompt} cached, canvas {args.canvas}, batch 1, "
        f"self-conditioning on; config: {TEXT['num_hidden_layers']} layers, hidden {TEXT['hidden_size']}, "
        f"{TEXT['num_experts']} experts top-{TEXT['top_k_experts']}, vocab {TEXT['vocab_size']}; "
        f"median of {args.reps} interleaved rounds"
    )
    print(
        f"reference (transformers {_tf_version()}, experts={ref.config.text_config._experts_implementation}, "
        f"attn={ref.config._attn_implementation}): {med['ref']:.1f} ms/step"
    )
    print(
        f"ours (as loaded):       {med['plain']:.1f} ms/step   ratio ref/ours {ratio_plain:.2f}x"
        f"   max rel logit diff {err_plain:.1e}"
    )
    print(
        f"ours, per-expert loop:  {med['fast']:.1f} ms/step   ratio ref/ours {ratio_fast:.2f}x"
        f"   max rel logit diff {err_fast:.1e}"
    )
    for b, length, vocab in ((3, 64, 8192), (1, 128, TEXT["vocab_size"])):
        race, cdf = sampler_math_ms(b, length, vocab, "race"), sampler_math_ms(b, length, vocab, "cdf")
        print(
            f"sampler math per step (no denoise), {b} x {length} canvas, vocab {vocab}: draw=race {race:.1f} ms,"
            f" draw=cdf {cdf:.1f} ms ({race / cdf:.1f}x)"
        )
    print(f"total wall time {time.perf_counter() - started:.1f} s")


def sampler_math_ms(batch: int, length: int, vocab: int, draw: str, reps: int = 8) -> float:
    """One sampler step on fixed logits: temperature, distribution + entropy, draw, argmax, accept, re-noise."""
    from dcopilot.engine.runtime.sampler import accept_mask, distribution, draw_tokens, renoise, temperatures

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, length, vocab, generator=g) * 3
    temps = temperatures(48, 0.4, 0.8)

    def step():
        z = logits / temps[3]
        probs, entropy = distribution(z)
        candidates = draw_tokens(probs.view(-1, vocab), g, draw).view(batch, length)
        z.argmax(dim=-1)
        noise = torch.randint(0, vocab, (batch, length), generator=g)
        return renoise(accept_mask(entropy, 0.1), candidates, noise)

    step()
    return statistics.median(timed(step, reps)) * 1e3


def _tf_version() -> str:
    import transformers

    return transformers.__version__


def _tokenizer_json(vocab: int) -> str:
    """A word-level tokenizer over the vocabulary (the loader requires tokenizer.json)."""
    from tokenizers import Tokenizer, models

    tok = Tokenizer(models.WordLevel(vocab={f"w{i}": i for i in range(vocab)}, unk_token="w3"))
    return tok.to_str()


if __name__ == "__main__":
    main()
