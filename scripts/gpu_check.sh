#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py): parity, step speed, nf4 and an editor session on whatever GPU is here.
#
#   bash scripts/gpu_check.sh --prepare                  # here, with a network: fill .carry/ with the wheels
#   bash scripts/gpu_check.sh --out DIR [--part core]    # on the GPU machine: < 6 min
#   bash scripts/gpu_check.sh --out DIR --part nf4       # on the GPU machine: < 3 min (bitsandbytes carried)
#   bash scripts/gpu_check.sh --out DIR --tiny [--part P]  # any machine, toy sizes (the CPU in CI)
# $PYTHON (else .venv/bin/python, else python3) runs it; --no-carry leaves .carry/ alone.
#
# A GPU machine may lack what the check needs and have no network: the wheels travel in .carry/<part>/ (git
# ignores it; each part carries only its own, as both together overflow a 64 MiB transfer). They are installed
# with --no-deps into a private folder put first on PYTHONPATH for the check's processes (the machine's own
# installation is not touched); the repository itself runs from source. docs/gpu.md has the exact remote command for each part.
set -uo pipefail
cd "$(dirname "$0")/.."

out="" part="core" tiny="" prepare="" carry=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="${2:?--out needs a folder}"; shift 2 ;;
        --part) part="${2:?--part needs core or nf4}"; shift 2 ;;
        --tiny) tiny="--tiny"; shift ;;
        --prepare) prepare=1; shift ;;
        --no-carry) carry=""; shift ;;  # ignore .carry/ (tests: the interpreter given has what it needs)
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# Wheels for the GPU machines' Python (3.12, x86-64). core: the transformers reference (the machines have 5.17,
# without DiffusionGemma) and the LSP server's packages (pygls and what it needs; msgspec); its import-time version
# checks pass against the machines' tokenizers 0.23.2 and huggingface_hub 1.33, regex is carried in case theirs is
# older than it asks; tree-sitter with the Python grammar, as the editor session types Python and the server checks
# each suggestion's syntax. nf4: bitsandbytes (43 MB).
CORE_WHEELS=(transformers==5.23.0 msgspec==0.22.0 pygls==2.1.1 lsprotocol==2025.0.0 cattrs==26.2.1 attrs==25.4.0
             typing_extensions==4.15.0 regex==2026.4.4 tree-sitter==0.26.1 tree-sitter-python==0.25.0)
NF4_WHEELS=(bitsandbytes==0.50.2)

if [ -n "$prepare" ]; then
    py=${PYTHON:-python3}
    for p in core nf4; do
        rm -rf ".carry/$p" && mkdir -p ".carry/$p"
        if [ "$p" = core ]; then wheels=("${CORE_WHEELS[@]}"); else wheels=("${NF4_WHEELS[@]}"); fi
        for w in "${wheels[@]}"; do
            "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
                --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
                --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
                -d ".carry/$p" "$w" || { echo "gpu_check.sh: could not download $w" >&2; exit 1; }
        done
        echo "gpu_check.sh: .carry/$p holds $(du -sh ".carry/$p" | cut -f1): $(ls ".carry/$p" | tr '\n' ' ')"
    done
    exit 0
fi

[ -n "$out" ] || { echo "gpu_check.sh: --out DIR is required (see --help)" >&2; exit 2; }
case "$part" in core|nf4) ;; *) echo "gpu_check.sh: --part is core or nf4, not $part" >&2; exit 2 ;; esac
mkdir -p "$out"

if [ -n "${PYTHON:-}" ]; then py=$PYTHON; elif [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # bench/ as a package
. scripts/dcopilot_path.sh  # `dcopilot` importable from this checkout, without an install
shopt -s nullglob
wheels=(".carry/$part"/*.whl)
if [ -n "$carry" ] && [ ${#wheels[@]} -gt 0 ]; then
    site="${TMPDIR:-/tmp}/dcopilot-gpu-check-$part"
    # A failed install is reported, not fatal: each item then says what it could not import.
    if "$py" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
            --upgrade --target "$site" "${wheels[@]}" >"$out/install.log" 2>&1; then
        export PYTHONPATH="$site:$PYTHONPATH"
        echo "gpu_check.sh: installed ${#wheels[@]} carried wheels into $site"
    else
        echo "gpu_check.sh: installing the carried wheels failed (see $out/install.log); going on without them" >&2
    fi
fi
"$py" bench/gpu_check.py --out "$out" --part "$part" $tiny
