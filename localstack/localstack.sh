#!/usr/bin/env bash
# LocalStack (S3 only) WITHOUT Docker, for tests, CI and trying jetvault by hand.
#
#   localstack/localstack.sh install          install (or reuse) the venv; prints its path
#   localstack/localstack.sh start [BUCKET..] start in the background on a free 127.0.0.1
#                                             port, wait until S3 is available, create the
#                                             buckets, print shell assignments on stdout:
#                                               LOCALSTACK_ENDPOINT=http://127.0.0.1:PORT
#                                               LOCALSTACK_PID=PID
#                                               LOCALSTACK_DIR=DIR (log, data; removed by stop)
#                                             use: eval "$(localstack/localstack.sh start)"
#   localstack/localstack.sh stop [PID [DIR]] stop it by PID (default $LOCALSTACK_PID and
#                                             $LOCALSTACK_DIR)
#   localstack/localstack.sh run [BUCKET..]   start, print the endpoint, stay in the
#                                             foreground until Ctrl-C, then stop
#
# Environment: LOCALSTACK_PORT (default: a free port), JETVAULT_CACHE (where the venv
# lives, default ~/.cache/jetvault), JETVAULT_PYTHON (an interpreter >= 3.12).
#
# The recipe (see the project's design notes): LocalStack's S3 needs Python >= 3.12 (on
# 3.11 every S3 call answers 500); each pin below fixes a start-up crash. Without
# GATEWAY_SERVER=hypercorn it binds 0.0.0.0; without DNS_ADDRESS=0 it starts a DNS
# server on port 53. Data lives in memory and in a temporary FILESYSTEM_ROOT.
# For Docker users: localstack/docker-compose.yml instead.
set -euo pipefail
JV_TOOL=localstack
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOCALSTACK_VERSION=2026.3.0
PACKAGES=(
  "localstack-core[base-runtime]==$LOCALSTACK_VERSION"
  'cbor2<6' 'pyopenssl<26' 'cryptography<47' 'service-identity<25'
)

install() {
  jv_venv "localstack-$LOCALSTACK_VERSION" "${PACKAGES[*]}" 12 "${PACKAGES[@]}"
}

start() {
  local venv port dir pid endpoint
  venv=$(install)
  port=${LOCALSTACK_PORT:-$(jv_free_port "$venv/bin/python")}
  dir=$(mktemp -d "${TMPDIR:-/tmp}/jetvault-localstack.XXXXXX")
  : >"$dir/.jetvault-server"
  mkdir -p "$dir/fs"
  GATEWAY_LISTEN="127.0.0.1:$port" GATEWAY_SERVER=hypercorn DNS_ADDRESS=0 SERVICES=s3 \
    SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 FILESYSTEM_ROOT="$dir/fs" \
    LOCALSTACK_CLI=0 \
    "$venv/bin/python" -m localstack.runtime.main </dev/null >"$dir/log" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$dir/pid"
  # Interrupted before the caller knows the PID: stop the server here.
  trap 'jv_stop "$pid" "$dir"; exit 130' INT TERM
  endpoint="http://127.0.0.1:$port"
  jv_wait_http "$endpoint/_localstack/health" "$pid" "$dir/log" 90 '"s3": *"(available|running)"' ||
    { jv_stop "$pid" "$dir"; exit 1; }
  local b
  for b in "$@"; do jv_create_bucket "$endpoint" "$b"; done
  jv_log "S3 ready at $endpoint (pid $pid, log $dir/log)"
  trap - INT TERM
  printf 'LOCALSTACK_ENDPOINT=%s\nLOCALSTACK_PID=%s\nLOCALSTACK_DIR=%s\n' "$endpoint" "$pid" "$dir"
}

stop() {
  local pid=${1:-${LOCALSTACK_PID:-}} dir=${2:-${LOCALSTACK_DIR:-}}
  [[ -n "$pid" ]] || jv_die "stop needs a PID (or LOCALSTACK_PID)"
  jv_stop "$pid" "$dir"
}

run() {
  local out
  out=$(start "$@")
  eval "$out"
  trap 'stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR"' EXIT
  trap 'exit 130' INT TERM
  cat >&2 <<MSG
LocalStack S3 is running at $LOCALSTACK_ENDPOINT (Ctrl-C stops it). In another shell:
  export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  jetvault --store s3://${1:-BUCKET} --s3-path-style doctor
MSG
  wait "$LOCALSTACK_PID" || true
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
