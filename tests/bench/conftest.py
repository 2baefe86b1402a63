"""The quality benchmark's modules live in bench/ and bench/heldout/ (scripts, not a package): import them."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "bench", ROOT / "bench" / "heldout"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
