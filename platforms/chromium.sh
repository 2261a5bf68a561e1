#!/usr/bin/env bash
# Chromium for the console's browser tests: Debian's chromium and chromium-driver, and
# axe-core (npm, pinned, cached) for the accessibility checks.
#
#   platforms/chromium.sh install   install what is missing (apt-get as root for the
#                                   browser; npm for axe-core); prints the path of
#                                   axe.min.js
#   platforms/chromium.sh start     start chromedriver in the background on a free
#                                   127.0.0.1 port, wait until it answers, print:
#                                     CHROMEDRIVER_URL=http://127.0.0.1:PORT
#                                     CHROMEDRIVER_PID=PID
#                                     CHROMEDRIVER_DIR=DIR (its log; removed by stop)
#                                   each test opens its own headless browser session
#   platforms/chromium.sh stop [PID [DIR]]
#
# Environment: JETVAULT_CACHE (where axe-core lives, default ~/.cache/jetvault).
set -euo pipefail
JV_TOOL=chromium
export JV_TOOL
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../localstack/lib.sh"

AXE_VERSION=4.11.0
AXE_PREFIX="$JV_CACHE/axe-core-$AXE_VERSION"

install() {
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || jv_die "chromium and chromedriver are missing: apt-get install chromium chromium-driver"
    jv_log "installing Debian's chromium and chromium-driver"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends chromium chromium-driver >&2; } ||
      jv_die "apt-get install chromium chromium-driver failed"
  fi
  local axe="$AXE_PREFIX/node_modules/axe-core/axe.min.js"
  if [[ ! -f "$AXE_PREFIX/.installed" || ! -f "$axe" ]]; then
    command -v npm >/dev/null 2>&1 || jv_die "npm is not installed (Debian: apt-get install npm)"
    jv_log "installing axe-core@$AXE_VERSION into $AXE_PREFIX (once, then cached)"
    rm -rf "$AXE_PREFIX"
    mkdir -p "$AXE_PREFIX"
    printf '{"name":"jetvault-axe","private":true}\n' >"$AXE_PREFIX/package.json"
    npm install --prefix "$AXE_PREFIX" --no-audit --no-fund --loglevel=error \
      "axe-core@$AXE_VERSION" >&2 || jv_die "npm install axe-core@$AXE_VERSION failed"
    touch "$AXE_PREFIX/.installed"
  fi
  printf '%s\n' "$axe"
}

start() {
  local port dir pid url
  install >/dev/null
  port=$(jv_free_port python3)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/jetvault-chromedriver.XXXXXX")
  : >"$dir/.jetvault-server"
  chromedriver --port="$port" --allowed-ips=127.0.0.1 </dev/null >"$dir/log" 2>&1 &
  pid=$!
  trap 'jv_stop "$pid" "$dir"; exit 130' INT TERM
  url="http://127.0.0.1:$port"
  jv_wait_http "$url/status" "$pid" "$dir/log" 30 '"ready": ?true' ||
    { jv_stop "$pid" "$dir"; exit 1; }
  jv_log "chromedriver ready at $url (pid $pid, $(chromium --version 2>/dev/null || echo chromium))"
  trap - INT TERM
  printf 'CHROMEDRIVER_URL=%s\nCHROMEDRIVER_PID=%s\nCHROMEDRIVER_DIR=%s\n' "$url" "$pid" "$dir"
}

stop() {
  local pid=${1:-${CHROMEDRIVER_PID:-}} dir=${2:-${CHROMEDRIVER_DIR:-}}
  [[ -n "$pid" ]] || jv_die "stop needs a PID (or CHROMEDRIVER_PID)"
  jv_stop "$pid" "$dir"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
