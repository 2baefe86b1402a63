"""The model runtime: DiffusionGemma, KV caches, loading, quantization, tokenizer and sampler.

Imports nothing from engine.tasks or engine.training. This file imports nothing, so torch-free modules here
(cancel) can be used without torch.
"""
