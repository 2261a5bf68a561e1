#!/usr/bin/env bash
# moto's S3 server, the second S3 implementation the tests run against.
#
#   localstack/moto.sh install           install (or reuse) the venv; prints its path
#   localstack/moto.sh start [BUCKET..]  start in the background on a free 127.0.0.1 port,
#                                        wait until it answers, create the buckets, print
#                                        shell assignments on stdout:
#                                          MOTO_ENDPOINT=http://127.0.0.1:PORT
#                                          MOTO_PID=PID
#                                          MOTO_DIR=DIR (log; removed by stop)
#                                        use: eval "$(localstack/moto.sh start)"
#   localstack/moto.sh stop [PID [DIR]]  stop it by PID (default $MOTO_PID and $MOTO_DIR)
#   localstack/moto.sh run [BUCKET..]    start, stay in the foreground until Ctrl-C
#
# Environment: MOTO_PORT (default: a free port), JETVAULT_CACHE (where the venv lives,
# default ~/.cache/jetvault), JETVAULT_PYTHON (an interpreter >= 3.11).
set -euo pipefail
JV_TOOL=moto
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MOTO_VERSION=5.2.5
PACKAGES=("moto[s3]==$MOTO_VERSION" 'flask<4' 'flask-cors<7')

install() {
  jv_venv "moto-$MOTO_VERSION" "${PACKAGES[*]}" 11 "${PACKAGES[@]}"
}

start() {
  local venv port dir pid endpoint b
  venv=$(install)
  port=${MOTO_PORT:-$(jv_free_port "$venv/bin/python")}
  dir=$(mktemp -d "${TMPDIR:-/tmp}/jetvault-moto.XXXXXX")
  : >"$dir/.jetvault-server"
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$dir/log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$dir/pid"
  # Interrupted before the caller knows the PID: stop the server here.
  trap 'jv_stop "$pid" "$dir"; exit 130' INT TERM
  endpoint="http://127.0.0.1:$port"
  jv_wait_http "$endpoint/moto-api/" "$pid" "$dir/log" 60 ||
    { jv_stop "$pid" "$dir"; exit 1; }
  for b in "$@"; do jv_create_bucket "$endpoint" "$b"; done
  jv_log "S3 ready at $endpoint (pid $pid, log $dir/log)"
  trap - INT TERM
  printf 'MOTO_ENDPOINT=%s\nMOTO_PID=%s\nMOTO_DIR=%s\n' "$endpoint" "$pid" "$dir"
}

stop() {
  local pid=${1:-${MOTO_PID:-}} dir=${2:-${MOTO_DIR:-}}
  [[ -n "$pid" ]] || jv_die "stop needs a PID (or MOTO_PID)"
  jv_stop "$pid" "$dir"
}

run() {
  local out
  out=$(start "$@")
  eval "$out"
  trap 'stop "$MOTO_PID" "$MOTO_DIR"' EXIT
  trap 'exit 130' INT TERM
  jv_log "moto S3 is running at $MOTO_ENDPOINT (Ctrl-C stops it)"
  wait "$MOTO_PID" || true
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
