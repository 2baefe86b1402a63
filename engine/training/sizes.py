"""Named model sizes for the embedded model: the shipped one and the larger candidates the GPU recipe can train.

Which of them may ship is decided by CPU latency (bench/size_latency.py: a single-line completion within the
300 ms keystroke-to-ghost budget on 2 cores); the numbers are in bench/RESULTS.md. More experts add parameters
(knowledge) without adding per-token compute: a token still runs top-2 of them.
"""

from __future__ import annotations

from dcopilot.engine.training.train import ModelShape

SIZES: dict[str, ModelShape] = {
    "5m": ModelShape(),  # the shipped dcopilot-embedded-5m
    "20m": ModelShape(
        hidden_size=192,
        intermediate_size=576,
        moe_intermediate_size=192,
        num_experts=16,
        num_hidden_layers=8,
        full_every=4,
        num_attention_heads=6,
    ),
    "40m": ModelShape(
        hidden_size=256,
        intermediate_size=768,
        moe_intermediate_size=256,
        num_experts=16,
        num_hidden_layers=8,
        full_every=4,
        num_attention_heads=8,
    ),
    "80m": ModelShape(
        hidden_size=384,
        intermediate_size=1152,
        moe_intermediate_size=384,
        num_experts=16,
        num_hidden_layers=8,
        full_every=4,
        num_attention_heads=12,
    ),
}
