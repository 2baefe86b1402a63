"""Text in, text out: requests, per-model prompting facts, prompts and canvases, the context window,
post-processing, infill and in-line edits. Imports engine.runtime, never engine.training.

Only infill and edit import torch; this file imports nothing, so the pure text modules stay light.
"""
