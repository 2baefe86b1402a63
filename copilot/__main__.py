"""`python -m dcopilot.copilot` is the `dcopilot` command."""

import sys

from dcopilot.copilot.cli import main

sys.exit(main())
