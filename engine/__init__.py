"""The engine: DiffusionGemma in plain PyTorch, its sampler, caches, and the infill/edit task layer.

It sees token ids and text, never LSP. `load_model` is imported lazily so that the pure text modules
(window, layout, postprocess) can be used without importing torch.
"""


def __getattr__(name):
    if name == "load_model":
        from engine.loader import load_model

        return load_model
    raise AttributeError(name)


__all__ = ["load_model"]
