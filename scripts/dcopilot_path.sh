# Sourced (not run) by the scripts that run on machines without an install, the GPU machines among them: `dcopilot`
# is this checkout (a namespace package over engine/, lsp/, copilot/), through a link in a temporary folder put
# first on PYTHONPATH and removed when the sourcing script exits. Run it from the repository root.
dcopilot_path="$(mktemp -d)"
trap 'rm -rf "$dcopilot_path"' EXIT
ln -s "$PWD" "$dcopilot_path/dcopilot"
export PYTHONPATH="$dcopilot_path${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
