"""The engine: DiffusionGemma in plain PyTorch and the completion tasks built on it, in three layers.

- `runtime`: the model, its KV caches, loading, quantization, the tokenizer and the sampler (torch).
- `tasks`: text in, text out: prompts and canvases, the context window, infill, in-line edits and the pure text
  post-processing (only infill and edit import torch).
- `training`: the embedded model's corpus, tokenizer and training loop (kept out of the wheel).

Dependencies point one way: training -> tasks -> runtime. The engine sees token ids and text, never LSP.
docs/architecture.md shows where each concern lives.
"""
