"""Training the embedded model: corpus manifest, BPE tokenizer, FIM examples and the training loop.

Uses engine.tasks (the inference layouts) and engine.runtime (the model); nothing imports it back. Not
installed by the wheel: run it from a source checkout (`python -m dcopilot.engine.training.train`).
"""
