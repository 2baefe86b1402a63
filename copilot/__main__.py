"""`python -m copilot` is the `dcopilot` command."""

import sys

from copilot.cli import main

sys.exit(main())
