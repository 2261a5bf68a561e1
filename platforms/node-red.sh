#!/usr/bin/env bash
# Node-RED, the real low-code platform the integration tests back up and restore.
#
#   platforms/node-red.sh install          install (or reuse) Node-RED from npm, pinned;
#                                          prints the path of its `node-red` command
#   platforms/node-red.sh start            start it in the background on a free 127.0.0.1
#                                          port with adminAuth on, wait until it answers,
#                                          print shell assignments on stdout:
#                                            NODE_RED_URL=http://127.0.0.1:PORT
#                                            NODE_RED_PID=PID
#                                            NODE_RED_DIR=DIR (its user dir; removed by stop)
#                                          use: eval "$(platforms/node-red.sh start)"
#   platforms/node-red.sh stop [PID [DIR]] stop it by PID (default $NODE_RED_PID/$NODE_RED_DIR)
#   platforms/node-red.sh path             print the installed `node-red` command, or fail
#                                          (never installs)
#   platforms/node-red.sh run              start, stay in the foreground until Ctrl-C
#
# The instance signs in like a production one: adminAuth with user `admin` and the
# password $NODE_RED_PASSWORD (default `jetvault-test-pw`), tokens from
# POST /auth/token (client_id node-red-admin, password grant) that expire after
# $NODE_RED_TOKEN_SECONDS (default 4 s, so that a test sees them renewed). Flows are
# stored in DIR/flows.json, credentials encrypted in DIR/flows_cred.json with
# credentialSecret `jetvault-test-secret`. `http in` nodes are served without sign-in.
#
# Environment: NODE_RED_PORT (default: a free port), JETVAULT_CACHE (where the npm
# install lives, default ~/.cache/jetvault), NODE_RED_USER_DIR (start in this existing
# user dir instead of a new one; its settings.js is written if missing, and stop leaves
# the dir, so an instance can be stopped and started again on its own files: the tests
# that stop Node-RED do this), NODE_RED_NO_INSTALL=1 (start fails instead of installing
# when Node-RED is not installed yet). Needs node >= 18 and npm.
set -euo pipefail
JV_TOOL=node-red
export JV_TOOL
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../localstack/lib.sh"

NODE_RED_VERSION=4.1.15
PREFIX="$JV_CACHE/node-red-$NODE_RED_VERSION"

installed() {
  [[ -f "$PREFIX/.installed" && -x "$PREFIX/node_modules/.bin/node-red" ]] ||
    jv_die "Node-RED $NODE_RED_VERSION is not installed in $PREFIX (run platforms/node-red.sh install, or scripts/test)"
  printf '%s\n' "$PREFIX/node_modules/.bin/node-red"
}

install() {
  if [[ -f "$PREFIX/.installed" && -x "$PREFIX/node_modules/.bin/node-red" ]]; then
    printf '%s\n' "$PREFIX/node_modules/.bin/node-red"
    return 0
  fi
  [[ "${NODE_RED_NO_INSTALL:-}" != 1 ]] || installed
  command -v npm >/dev/null 2>&1 || jv_die "npm is not installed (Debian: apt-get install nodejs npm)"
  jv_log "installing node-red@$NODE_RED_VERSION into $PREFIX (once, then cached)"
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  # A package.json of its own, so that npm does not walk up to another project.
  printf '{"name":"jetvault-node-red","private":true}\n' >"$PREFIX/package.json"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "node-red@$NODE_RED_VERSION" >&2 ||
    jv_die "npm install node-red@$NODE_RED_VERSION failed (is the npm registry reachable?)"
  touch "$PREFIX/.installed"
  printf '%s\n' "$PREFIX/node_modules/.bin/node-red"
}

# Writes DIR/settings.js for PORT.
write_settings() {
  local dir=$1 port=$2 hash
  hash=$(cd "$PREFIX" && NODE_RED_PASSWORD="${NODE_RED_PASSWORD:-jetvault-test-pw}" node -e \
    'process.stdout.write(require("bcryptjs").hashSync(process.env.NODE_RED_PASSWORD, 8))') ||
    jv_die "cannot hash the admin password with Node-RED's bcryptjs"
  cat >"$dir/settings.js" <<JS
module.exports = {
  uiHost: "127.0.0.1",
  uiPort: $port,
  userDir: "$dir",
  flowFile: "flows.json",
  credentialSecret: "jetvault-test-secret",
  adminAuth: {
    type: "credentials",
    sessionExpiryTime: ${NODE_RED_TOKEN_SECONDS:-4},
    users: [{ username: "admin", password: "$hash", permissions: "*" }],
  },
  httpNodeRoot: "/",
  logging: { console: { level: "warn", metrics: false, audit: false } },
  diagnostics: { enabled: false },
  telemetry: { enabled: false },
  editorTheme: { tours: false, projects: { enabled: false } },
};
JS
}

start() {
  local bin port dir pid url
  bin=$(install)
  command -v python3 >/dev/null 2>&1 || jv_die "python3 is needed to pick a free port"
  port=${NODE_RED_PORT:-$(jv_free_port python3)}
  if [[ -n "${NODE_RED_USER_DIR:-}" ]]; then
    dir=$NODE_RED_USER_DIR
    [[ -d "$dir" ]] || jv_die "NODE_RED_USER_DIR $dir is not a directory"
    [[ -f "$dir/settings.js" ]] || write_settings "$dir" "$port"
  else
    dir=$(mktemp -d "${TMPDIR:-/tmp}/jetvault-node-red.XXXXXX")
    : >"$dir/.jetvault-server"
    write_settings "$dir" "$port"
  fi
  "$bin" --settings "$dir/settings.js" --userDir "$dir" </dev/null >"$dir/log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$dir/pid"
  trap 'jv_stop "$pid" "$dir"; exit 130' INT TERM
  url="http://127.0.0.1:$port"
  # /auth/login answers without a token once the admin API is up.
  jv_wait_http "$url/auth/login" "$pid" "$dir/log" 60 'credentials' ||
    { jv_stop "$pid" "$dir"; exit 1; }
  jv_log "Node-RED $NODE_RED_VERSION ready at $url (pid $pid, user dir $dir)"
  trap - INT TERM
  printf 'NODE_RED_URL=%s\nNODE_RED_PID=%s\nNODE_RED_DIR=%s\n' "$url" "$pid" "$dir"
}

stop() {
  local pid=${1:-${NODE_RED_PID:-}} dir=${2:-${NODE_RED_DIR:-}}
  [[ -n "$pid" ]] || jv_die "stop needs a PID (or NODE_RED_PID)"
  jv_stop "$pid" "$dir"
}

run() {
  local out
  out=$(start)
  eval "$out"
  trap 'stop "$NODE_RED_PID" "$NODE_RED_DIR"' EXIT
  trap 'exit 130' INT TERM
  jv_log "Node-RED is running at $NODE_RED_URL (Ctrl-C stops it)"
  wait "$NODE_RED_PID" || true
}

case "${1:-}" in
  install) install ;;
  path) installed ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
