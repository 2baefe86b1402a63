#!/usr/bin/env bash
# Rebuild corpus v2 (engine/training/corpus_v2.py) from the package registries: PyPI (pip), npm and Debian
# (apt-get download; run `apt-get update` once first on a fresh machine). Downloads are cached beside the corpus,
# so a second run, or one after an interruption, only redoes what is missing. Prints how long the rebuild took.
#
#   bash scripts/build_corpus_v2.sh                 # -> ~/.cache/dcopilot-corpus/v2
#   bash scripts/build_corpus_v2.sh --out /data/v2  # any build option (see --help)
set -euo pipefail
cd "$(dirname "$0")/.."
# the staging processes are forked after the tokenizer may have been loaded; each encodes one text at a time
export TOKENIZERS_PARALLELISM=false
exec nice -n 10 .venv/bin/python -m dcopilot.engine.training.corpus_v2 build "$@"
