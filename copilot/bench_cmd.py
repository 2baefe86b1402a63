"""`dcopilot bench`: a quick look at the configured model on this machine (load, one denoise step, one completion).

For sanity checks and bug reports, not claims: side-by-side speed comparisons live in bench/.
Prompt and canvas are random token ids, so the numbers measure the model's cost, not its output.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

from dcopilot.copilot.config import Config
from dcopilot.copilot.models_cmd import human_bytes


def bench_main(config: Config, repeats: int = 10, prompt_tokens: int = 256) -> int:
    try:
        import torch
        from dcopilot.engine.runtime.loader import load_model, pick_device, pick_dtype
        from dcopilot.engine.runtime.sampler import sample
    except ImportError as exc:
        print(f"dcopilot bench: not available yet (the engine is missing {exc.name or exc})", file=sys.stderr)
        return 2

    device = pick_device(config.model.device)
    dtype = pick_dtype(config.model.dtype, device)
    quantize = None if config.model.quantize == "none" else config.model.quantize
    print(f"hardware   {_hardware(torch, device)}")
    print(
        f"software   torch {torch.__version__}, {torch.get_num_threads()} threads, Python {platform.python_version()}"
    )

    started = time.perf_counter()
    try:
        model = load_model(config.model.path, device=device, dtype=dtype, quantize=quantize)
    except Exception as exc:  # the loader's errors are one line naming the file
        print(f"dcopilot bench: cannot load the model: {exc}", file=sys.stderr)
        return 1
    _sync(torch, device)
    load_s = time.perf_counter() - started

    from dcopilot.engine.tasks.requests import InfillRequest, for_device

    c = config.completion  # 0 (AUTO) resolves to the device's default, as a completion would
    shape = for_device(InfillRequest(text="", cursor=0, max_tokens=c.max_tokens, hypotheses=c.hypotheses), device.type)
    batch, canvas = shape.hypotheses, shape.max_tokens
    vocab = model.config.vocab_size
    print(
        f"settings   model {model.path}, {model.num_parameters() / 1e6:,.1f}M parameters, "
        f"{str(dtype).removeprefix('torch.')}, "
        f"quantize {config.model.quantize}, prompt {prompt_tokens} tokens, canvas {canvas} tokens x {batch} hypotheses"
    )
    print(f"load       {load_s:.2f} s")

    generator = torch.Generator(device=device).manual_seed(config.completion.seed)
    prompt = torch.randint(0, vocab, (1, prompt_tokens), device=device, generator=generator)
    noisy = torch.randint(0, vocab, (batch, canvas), device=device, generator=generator)
    with torch.no_grad():
        started = time.perf_counter()
        cache = model.encode(prompt)
        _sync(torch, device)
        print(f"encode     {(time.perf_counter() - started) * 1000:.1f} ms ({prompt_tokens} prompt tokens)")

        logits = model.denoise(noisy, cache)  # warm-up, and the self-conditioning input of later steps
        times = []
        for _ in range(repeats):
            _sync(torch, device)
            started = time.perf_counter()
            model.denoise(noisy, cache, self_conditioning_logits=logits)
            _sync(torch, device)
            times.append(time.perf_counter() - started)
    median = statistics.median(times) * 1000
    print(f"denoise    {median:.1f} ms per step (median of {repeats}; min {min(times) * 1000:.1f} ms)")

    result = sample(model, cache, canvas_length=canvas, batch=batch, generator=generator)
    stats = result.stats
    print(
        f"complete   {stats.seconds * 1000:.0f} ms, {stats.steps} steps, {sum(stats.accepted_per_step)} tokens accepted"
    )
    if device.type == "cuda":
        print(f"memory     {human_bytes(torch.cuda.max_memory_allocated(device))} peak allocated on {device}")
    return 0


def _sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _hardware(torch, device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} ({human_bytes(props.total_memory)}), device {device}"
    return f"{_cpu_name()}, {os.cpu_count()} cores (CPU)"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
