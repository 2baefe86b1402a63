"""The one cancellation exception, shared by the engine, the model worker and the LSP layer (no torch here).

The sampler raises it between denoising steps when its `cancel()` poll says so (with the work done so far in
`stats`); the model worker raises it for jobs that never ran; the server answers RequestCancelled for it.
"""

from __future__ import annotations


class Cancelled(Exception):
    """A request stopped before it finished: superseded, cancelled by the client, or its worker closed."""

    def __init__(self, reason: str = "cancelled", stats: object | None = None):
        super().__init__(reason)
        self.stats = stats  # dcopilot.engine.runtime.sampler.SampleStats when the sampler stopped
