"""Denoise-step latency of the full DiffusionGemma 26B-A4B geometry on one GPU: ours vs the reference, vs the floor.

Random bf16 weights (built on the meta device, materialized on the GPU; nothing is downloaded), a 4096-token
cached prompt, a 256-token canvas with self-conditioning (every step but the first has it). Reports ms per denoise
step for
  ours-eager     dcopilot.engine.runtime.model.DiffusionGemma.denoise as loaded (per-expert loop)
  ours-grouped   dcopilot.engine.runtime.fast.accelerate: grouped expert matmul, no host sync in the step
  ours-compiled  dcopilot.engine.runtime.fast.compiled_denoise: torch.compile, CUDA graphs ("reduce-overhead"), one
                 graph per cache length
  ours-static    dcopilot.engine.runtime.static.StaticDenoise, the daemon's step: the cache copied into padded bucket
                 buffers (one graph per length bucket), torch.compile + CUDA graphs
  reference      transformers DiffusionGemmaForBlockDiffusion.forward(decoder_input_ids=..., past_key_values=...)
  ours-nf4       the same model after dcopilot.engine.runtime.quant.quantize_model(..., "nf4"); sample-loop-nf4 its
                 sampler loop, nf4-static its static step (compiled; rows dropped when the compile fell back to eager)
  sample-loop    dcopilot.engine.runtime.sampler.sample, 16 steps, early stop off: ms per step including the sampler's
                 own work (grouped experts; "-compiled" / "-static" with those steps; sample-loop-static is how the
                 daemon runs a request when model.compile is on)
plus the memory-bandwidth floor: bytes a step must read (all layer weights - with 256 tokens and top-8 of 128
every expert is hit -, the embedding twice (self-conditioning and LM head), the visible KV cache, the
self-conditioning input and the logits) over a measured device-to-device copy bandwidth; and peak memory.

  python bench/gpu_step.py --out $OUT                  # on an H100 / H200
  python bench/gpu_step.py --tiny --device cpu --out /tmp/x   # CPU check of the script itself (tiny config;
                                                              # several minutes: torch.compile on 2 cores)
Results go to OUT/gpu_step.json and OUT/gpu_step.md, rewritten after every variant (a run stopped at a time limit
keeps what it measured). transformers is a bench-only oracle.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from torch import nn

FULL_TEXT: dict[str, Any] = dict(  # google/diffusiongemma-26B-A4B-it text_config (research notes section 1.2)
    vocab_size=262144,
    hidden_size=2816,
    intermediate_size=2112,
    moe_intermediate_size=704,
    num_experts=128,
    top_k_experts=8,
    num_hidden_layers=30,
    layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 5,
    num_attention_heads=16,
    num_key_value_heads=8,
    num_global_key_value_heads=2,
    head_dim=256,
    global_head_dim=512,
    sliding_window=1024,
    max_position_embeddings=262144,
    rope_parameters={
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0},
    },
    rms_norm_eps=1e-6,
    final_logit_softcapping=30.0,
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=1,
)
TINY_TEXT: dict[str, Any] = dict(
    FULL_TEXT,
    vocab_size=512,
    hidden_size=64,
    intermediate_size=96,
    moe_intermediate_size=32,
    num_experts=16,
    top_k_experts=4,
    num_hidden_layers=6,
    layer_types=["sliding_attention"] * 5 + ["full_attention"],
    num_attention_heads=4,
    num_key_value_heads=2,
    num_global_key_value_heads=1,
    head_dim=16,
    global_head_dim=32,
    sliding_window=32,
    max_position_embeddings=4096,
)
VISION = dict(
    model_type="gemma4_vision",
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=8,
    global_head_dim=8,
    position_embedding_size=64,
)


# -- timing helpers -------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(fn, device: torch.device, warmup: int, reps: int) -> float:
    """Median ms per call; on CUDA with events around each call (the queue is drained first)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, nbytes: int) -> float:
    """Bytes/s of a device-to-device copy (read + write counted)."""
    src = torch.empty(nbytes // 2, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    ms = time_steps(lambda: dst.copy_(src), device, 3, 10)
    return 2 * nbytes / (ms / 1e3)


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


LOOP_STEPS = 16  # the sampler loop's fixed step count (early stop off)


def sample_loop_ms(model, cache, canvas: int, device: torch.device, denoise, steps: int = LOOP_STEPS) -> float:
    """ms per step of dcopilot.engine.runtime.sampler.sample over a fixed `steps`-step run (early stop off):
    denoiser + sampler."""
    import dataclasses

    from dcopilot.engine.runtime.config import GenerationConfig
    from dcopilot.engine.runtime.sampler import sample

    gen = dataclasses.replace(GenerationConfig(), max_denoising_steps=steps, confidence_threshold=None)

    def run():
        return sample(
            model,
            cache,
            canvas,
            1,
            generation=gen,
            denoise=denoise,
            generator=torch.Generator(device=device).manual_seed(0),
        )

    return time_steps(run, device, 1, 2) / steps


# -- models ---------------------------------------------------------------------------------------------------
def build_ours(text: dict, device: torch.device, dtype: torch.dtype):
    from dcopilot.engine.runtime.config import TextConfig
    from dcopilot.engine.runtime.model import DiffusionGemma, init_weights

    cfg = TextConfig.from_dict(text)
    with torch.device("meta"):
        model = DiffusionGemma(cfg)
    model = model.to(dtype).to_empty(device=device)
    init_weights(model, std=0.02, generator=None)
    model.init_rope(device)
    model.requires_grad_(False).eval()
    model.canvas_length = 256
    return model


def build_reference(text: dict, device: torch.device, dtype: torch.dtype, canvas: int):
    """The transformers model with random weights, allocated once on `device`.

    Built on the meta device and materialized with to_empty: building directly on the GPU would allocate the
    encoder and the decoder copies of every weight before post_init ties them (2 x 50 GB on the 26B geometry).
    Buffers (RoPE tables, embed scale) come from a small donor model with the same geometry; weights are random.
    """
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    def make(text_config: dict, where) -> DiffusionGemmaForBlockDiffusion:
        config = DiffusionGemmaConfig(  # type: ignore[call-arg]  # eos_token_id: an extra key PreTrainedConfig keeps
            text_config=text_config, vision_config=VISION, canvas_length=canvas, eos_token_id=[1]
        )
        old = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(where):
                return DiffusionGemmaForBlockDiffusion(config)
        finally:
            torch.set_default_dtype(old)

    model = make(text, "meta")
    # Materialize each distinct tensor once: Module.to_empty would untie the encoder/decoder/LM-head weights.
    memo: dict[int, Any] = {}  # a Parameter or a buffer tensor, like the table it goes back into
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for key, t in list(table.items()):
                if t is None:
                    continue
                if id(t) not in memo:
                    fresh = torch.empty_like(t, device=device)
                    memo[id(t)] = nn.Parameter(fresh, requires_grad=False) if isinstance(t, nn.Parameter) else fresh
                table[key] = memo[id(t)]
    del memo
    small = dict(
        text,
        vocab_size=512,
        num_hidden_layers=6,
        layer_types=["sliding_attention"] * 5 + ["full_attention"],
        num_experts=8,
        top_k_experts=2,
    )
    donor = dict(make(small, "cpu").named_buffers())
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name in donor and donor[name].shape == buf.shape:
                buf.copy_(donor[name])
            elif name.endswith("layer_scalar"):
                buf.fill_(1.0)
            else:
                raise RuntimeError(f"no initial value for reference buffer {name}")
        for p in model.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 0.02)
            else:
                p.fill_(1.0)
    return model.requires_grad_(False).eval()


def step_bytes(model, cache_tokens: int, canvas: int, nf4: bool = False) -> int:
    """Bytes one denoise step must move at least (see module docstring)."""
    cfg = model.config
    weights = 0
    for layer in model.layers:
        for t in list(layer.parameters()) + list(layer.buffers()):
            weights += t.numel() * t.element_size()
    for t in model.self_conditioning.parameters():
        weights += t.numel() * t.element_size()
    emb = model.embed_tokens.weight
    weights += 2 * emb.numel() * emb.element_size()  # self-conditioning soft embedding and tied LM head
    kv = 0
    for i in range(cfg.num_hidden_layers):
        g = cfg.layer(i)
        rows = min(cache_tokens, cfg.sliding_window - 1) if g.sliding else cache_tokens
        kv += 2 * rows * g.num_kv_heads * g.head_dim * emb.element_size()
    activations = canvas * cfg.vocab_size * (2 + 4)  # self-conditioning input (bf16) + logits out (fp32)
    return weights + kv + activations


# -- main -----------------------------------------------------------------------------------------------------
def measure_ours(args, text: dict, device: torch.device, dtype, prompt, canvas, skip: set, results: dict, record):
    """Our model's rows: eager, grouped, compiled, static and nf4 steps and their sampler loops. Its own function,
    so the model, cache and compiled steps are freed when it returns, before the reference is built."""
    t = time.perf_counter()
    ours = build_ours(text, device, dtype)
    cache = ours.encode(prompt)
    sync(device)
    results["build_and_prefill_s"] = round(time.perf_counter() - t, 1)
    sc = (ours.denoise(canvas, cache) / 0.8).to(dtype)
    nbytes = step_bytes(ours, args.cache_tokens, args.canvas)
    results["step_bytes_GB"] = round(nbytes / 1e9, 2)
    results["floor_ms"] = round(nbytes / (results["copy_bandwidth_GBps"] * 1e9) * 1e3, 3)

    def step(f):
        return lambda: f(canvas, cache, self_conditioning_logits=sc)

    record("ours-eager", None, lambda: time_steps(step(ours.denoise), device, args.warmup, args.reps))
    from dcopilot.engine.runtime.fast import accelerate, compiled_denoise

    accelerate(ours)
    record("ours-grouped", None, lambda: time_steps(step(ours.denoise), device, args.warmup, args.reps))
    record("sample-loop", None, lambda: sample_loop_ms(ours, cache, args.canvas, device, None, args.loop_steps))
    compiled = None
    if "compiled" not in skip:
        t = time.perf_counter()
        try:
            for t_ in [t for t in cache.keys + cache.values if t is not None]:
                torch._dynamo.mark_static_address(t_)  # the cache is fixed during a sample() call
            compiled = compiled_denoise(ours)
        except Exception as e:
            results["errors"]["ours-compiled"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        if compiled is not None:
            record("ours-compiled", None, lambda: time_steps(step(compiled), device, args.warmup, args.reps))
            results["compile_s"] = round(time.perf_counter() - t, 1)
            record(
                "sample-loop-compiled",
                None,
                lambda: sample_loop_ms(ours, cache, args.canvas, device, compiled, args.loop_steps),
            )
    if "static" not in skip:
        from dcopilot.engine.runtime.static import StaticDenoise

        t = time.perf_counter()
        # as dcopilot.copilot.service builds it; falls back to eager on a compile error
        static = StaticDenoise(ours, backend=args.static_backend)
        record("ours-static", None, lambda: time_steps(step(static), device, args.warmup, args.reps))
        results["static_compile_s"] = round(time.perf_counter() - t, 1)
        record(
            "sample-loop-static",
            None,
            lambda: sample_loop_ms(ours, cache, args.canvas, device, static, args.loop_steps),
        )
        if static.failed:  # the timings above are eager ones: do not report them as compiled
            for name in ("ours-static", "sample-loop-static"):
                results["ms_per_step"].pop(name, None)
            results["errors"]["ours-static"] = f"compile failed, StaticDenoise ran eager: {static.why_failed}"[:400]
    if "nf4" not in skip:
        try:
            from dcopilot.engine.runtime.quant import quantize_model, weight_bytes

            compiled = None
            torch._dynamo.reset()
            quantize_model(ours, "nf4", device)
            gc.collect()
            reset_peak(device)
            results["nf4_weight_GB"] = round(weight_bytes(ours) / 1e9, 3)
            results["nf4_step_bytes_GB"] = round(step_bytes(ours, args.cache_tokens, args.canvas) / 1e9, 3)
        except Exception as e:
            results["errors"]["nf4"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            skip.add("ours-nf4")
        record("ours-nf4", None, lambda: time_steps(step(ours.denoise), device, args.warmup, args.reps))
        record("sample-loop-nf4", None, lambda: sample_loop_ms(ours, cache, args.canvas, device, None, args.loop_steps))
        if "nf4-static" not in skip and "ours-nf4" not in skip:
            from dcopilot.engine.runtime.static import StaticDenoise

            static = StaticDenoise(ours, backend=args.static_backend)
            record("nf4-static", None, lambda: time_steps(step(static), device, args.warmup, args.reps))
            if static.failed:
                results["ms_per_step"].pop("nf4-static", None)
                results["errors"]["nf4-static"] = f"compile failed, ran eager: {static.why_failed}"[:400]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny config (CPU check of this script)")
    ap.add_argument("--cache-tokens", type=int, default=4096)
    ap.add_argument("--canvas", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument(
        "--dtype",
        default="bfloat16",
        choices=["bfloat16", "float32"],
        help="weights and compute (the grouped-mm kernel under torch.compile needs bfloat16)",
    )
    ap.add_argument(
        "--skip",
        default="sample-loop-compiled",
        help="comma list of: ours-eager,ours-grouped,sample-loop,compiled,sample-loop-compiled,static,"
        "sample-loop-static,nf4,sample-loop-nf4,nf4-static,reference (default skips"
        " sample-loop-compiled: a second multi-minute compile)",
    )
    ap.add_argument("--loop-steps", type=int, default=LOOP_STEPS, help="steps of the sample-loop rows")
    ap.add_argument(
        "--static-backend",
        default=None,
        help="torch.compile backend for the static step instead of inductor (e.g. eager: a CPU check)",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    text = TINY_TEXT if args.tiny else FULL_TEXT
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "hardware": _hardware(device),
        "torch": torch.__version__,
        "dtype": str(dtype),
        "config": "tiny" if args.tiny else "diffusiongemma-26B-A4B (random weights)",
        "cache_tokens": args.cache_tokens,
        "canvas": args.canvas,
        "batch": 1,
        "ms_per_step": {},
        "loop_steps": args.loop_steps,
        "errors": {},
    }
    torch.manual_seed(0)
    g = torch.Generator(device="cpu").manual_seed(0)
    prompt = torch.randint(5, text["vocab_size"], (1, args.cache_tokens), generator=g).to(device)
    canvas = torch.randint(0, text["vocab_size"], (1, args.canvas), generator=g).to(device)

    def record(name, fn, ms_fn):
        if name in skip:
            return
        try:
            reset_peak(device)
            ms = ms_fn()
            results["ms_per_step"][name] = round(ms, 3)
            peak = peak_mb(device)  # None off CUDA
            if peak is not None:
                results.setdefault("peak_mb", {})[name] = round(peak, 1)
            print(f"{name:14s} {ms:9.2f} ms/step", flush=True)
        except Exception as e:  # report and go on: one failing variant must not hide the others
            results["errors"][name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        save(results, args.out)

    with torch.no_grad():
        results["copy_bandwidth_GBps"] = round(
            copy_bandwidth(device, 2 << 30 if device.type == "cuda" else 1 << 26) / 1e9, 1
        )
        measure_ours(args, text, device, dtype, prompt, canvas, skip, results, record)
        gc.collect()
        torch._dynamo.reset()
        reset_peak(device)

        if "reference" not in skip:
            try:
                ref = build_reference(text, device, dtype, args.canvas)
                ref_cache = ref(input_ids=prompt, decoder_input_ids=canvas).past_key_values
                sc = torch.randn(1, args.canvas, text["vocab_size"], device=device, dtype=dtype)

                def fn():
                    return ref(past_key_values=ref_cache, decoder_input_ids=canvas, self_conditioning_logits=sc)

                results["reference_impl"] = {
                    "experts": ref.config.text_config._experts_implementation,
                    "attention": ref.config._attn_implementation,
                }
                record("reference", None, lambda: time_steps(fn, device, args.warmup, args.reps))
            except Exception as e:
                results["errors"]["reference"] = f"{type(e).__name__}: {e}"
                traceback.print_exc()

    ms = results["ms_per_step"]
    best = min((v for k, v in ms.items() if k.startswith("ours-") and k != "ours-nf4"), default=None)
    if best is not None and "reference" in ms:
        results["speedup_vs_reference"] = round(ms["reference"] / best, 2)
    if best is not None:
        results["best_over_floor"] = round(best / results["floor_ms"], 2)
    save(results, args.out)
    print(_markdown(results))


def save(results: dict, out: Path) -> None:
    (out / "gpu_step.json").write_text(json.dumps(results, indent=2))
    (out / "gpu_step.md").write_text(_markdown(results))


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.machine()} ({torch.get_num_threads()} threads)"


def _markdown(r: dict) -> str:
    lines = [
        f"# gpu_step ({r['hardware']}, torch {r['torch']}, {r['dtype']})",
        "",
        f"config: {r['config']}; cached tokens {r['cache_tokens']}, canvas {r['canvas']}, batch 1,"
        f" self-conditioning on",
        "",
        "| variant | ms/step | peak MiB |",
        "|---|---|---|",
    ]
    for k, v in r["ms_per_step"].items():
        lines.append(f"| {k} | {v} | {r.get('peak_mb', {}).get(k, '-')} |")
    lines += [
        "",
        f"floor: {r.get('step_bytes_GB')} GB/step over {r.get('copy_bandwidth_GBps')} GB/s copy bandwidth"
        f" = {r.get('floor_ms')} ms; best ours / floor = {r.get('best_over_floor')};"
        f" reference / best ours = {r.get('speedup_vs_reference')}",
    ]
    if "nf4_weight_GB" in r:
        lines.append(f"nf4 weights {r['nf4_weight_GB']} GB, {r['nf4_step_bytes_GB']} GB read per step")
    for k, v in r["errors"].items():
        lines.append(f"ERROR {k}: {v}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
