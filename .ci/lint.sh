#!/usr/bin/env bash
# Lint, format and type checks (docs/development.md): ruff and mypy for Python, eslint for the VS Code
# extension, stylua and luacheck for the Neovim plugin. Runs every check, then fails if any failed.
# Needs the .venv from scripts/setup.sh (ruff and mypy come with the dev extra) and npm; under CI=true it
# installs luacheck from Debian when missing.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
check() {
    local name=$1
    shift
    local t=$SECONDS
    if "$@"; then
        echo "lint: $name ok ($((SECONDS - t)) s)"
    else
        echo "lint: $name FAILED ($((SECONDS - t)) s)" >&2
        failed+=("$name")
    fi
}
missing() {
    echo "lint: $1 is missing: $2" >&2
    failed+=("$1")
}

py=.venv/bin
if [ -x "$py/ruff" ] && [ -x "$py/mypy" ]; then
    check "ruff check" "$py/ruff" check .
    check "ruff format" "$py/ruff" format --check .
    # mypy reads copilot/, lsp/, engine/ as dcopilot.* through this view ([tool.mypy] in pyproject.toml)
    mkdir -p build/mypy/dcopilot
    for pkg in copilot lsp engine; do ln -sfn "../../../$pkg" "build/mypy/dcopilot/$pkg"; done
    check "mypy" "$py/mypy"
else
    missing "ruff/mypy" "run scripts/setup.sh (they come with the dev extra)"
fi

ext=editors/vscode
if command -v npm >/dev/null; then
    if [ ! -d "$ext/node_modules" ]; then
        (cd "$ext" && npm ci --no-audit --no-fund --loglevel=error) || missing "node_modules" "npm ci failed in $ext"
    fi
    check "eslint" bash -c "cd $ext && node_modules/.bin/eslint ."
    check "stylua" "$ext/node_modules/.bin/stylua" --check editors/nvim tests/editors/nvim
else
    missing "npm" "install Node 20+ (eslint and stylua come from $ext/package.json)"
fi

if ! command -v luacheck >/dev/null && [ "${CI:-}" = "true" ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua-check >/dev/null) \
        || echo "lint: apt-get install lua-check failed" >&2
fi
if command -v luacheck >/dev/null; then
    check "luacheck" luacheck --no-color -q editors/nvim tests/editors/nvim
else
    missing "luacheck" "apt-get install lua-check (Debian) or luarocks install luacheck"
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "lint: failed: ${failed[*]}" >&2
    exit 1
fi
echo "lint: all checks passed"
