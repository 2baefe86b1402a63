#!/usr/bin/env bash
# CI: mutation check of the pure text modules (docs/testing.md). Each module runs against its own unit tests in the
# .venv that .ci/run made; the step fails when a module scores below scripts/mutation.py's threshold.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
status=0
nice .venv/bin/python scripts/mutation.py --workers "${MUTATION_WORKERS:-2}" || status=$?
echo ".ci/mutation.sh: took $((SECONDS - start)) s"
exit "$status"
