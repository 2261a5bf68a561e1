#!/usr/bin/env bash
# Serving benchmark: jetvault serve against nginx on the same bytes, in the same run.
#
# Cases (wrk -t2 -c64, both servers on this machine's loopback):
#   pointer      GET .../release               (~300 B JSON)
#   pointer-304  GET .../release               with If-None-Match
#   config       GET .../release/config        (the 1.3 MB Appsmith export)
#   config-304   GET .../release/config        with If-None-Match
#   config-zstd  GET .../release/config        Accept-Encoding: zstd (stored bytes)
# and jetvault's resident memory idle and at its peak under the load.
#
# Usage: bench/http.sh [DURATION]   (default 10s; needs wrk, nginx, curl, a release build)
#        ROUNDS=5 bench/http.sh 10s   rounds per case and server (default 3; medians reported)
#        CASES='config config-zstd' bench/http.sh 5s   runs only the cases named
#        LEVEL=19 bench/http.sh 10s   snapshots.compression_level of the served snapshot
#                                     (default 3, jetvault's default): the zstd cases serve
#                                     that frame
set -euo pipefail

DURATION=${1:-10s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=localstack/lib.sh
source "$ROOT/localstack/lib.sh"
JV_TOOL=bench/http.sh
BIN=${JETVAULT_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/jetvault}
CORPUS=$ROOT/tests/data/appsmith-ce-automation-test.json
[ -x "$BIN" ] || { echo "build first: cargo build --release ($BIN missing)" >&2; exit 2; }
for t in wrk nginx curl; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 2; }; done

WORK=$(mktemp -d)
JV_PID='' NG_PID=''
cleanup() {
  if [ -n "$JV_PID" ]; then kill "$JV_PID" 2>/dev/null || true; fi
  if [ -n "$NG_PID" ]; then kill "$NG_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

TOKEN=bench-token
cat > "$WORK/jv.toml" <<EOF
store = "file://$WORK/store"
[snapshots]
compression_level = ${LEVEL:-3}
[server]
pointer_ttl = "1s"
[[server.tokens]]
name = "bench"
role = "operate"
value = "$TOKEN"
EOF

"$BIN" --config "$WORK/jv.toml" backup crm production --from "$CORPUS" >/dev/null
"$BIN" --config "$WORK/jv.toml" release crm production 1 --label 1.0.0 >/dev/null

RUST_LOG=warn "$BIN" --config "$WORK/jv.toml" serve --listen 127.0.0.1:0 > "$WORK/jv.out" 2>"$WORK/jv.err" &
JV_PID=$!
JV=$(jv_serve_url "$JV_PID" "$WORK/jv.out" "$WORK/jv.err" 10)
A="Authorization: Bearer $TOKEN"
P=/v1/apps/crm/envs/production

# nginx serves the very same bytes.
mkdir -p "$WORK/www" "$WORK/ng"
curl -sf -H "$A" "$JV$P/release" > "$WORK/www/release.json"
curl -sf -H "$A" "$JV$P/release/config" > "$WORK/www/config.json"
curl -sf -H "$A" -H 'Accept-Encoding: zstd' "$JV$P/release/config" > "$WORK/www/config.zst"
chmod -R a+rX "$WORK"   # nginx workers run as an unprivileged user
NGPORT=$(jv_free_port python3)
cat > "$WORK/ng/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/ng/nginx.pid;
error_log $WORK/ng/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000;
  types { application/json json; application/zstd zst; }
  server {
    listen 127.0.0.1:$NGPORT;
    root $WORK/www;
    location = /config.zst { default_type application/json; types { } add_header Content-Encoding zstd; }
  }
}
EOF
nginx -c "$WORK/ng/nginx.conf" -p "$WORK/ng" &
NG_PID=$!
NG=http://127.0.0.1:$NGPORT
for _ in $(seq 50); do curl -sf "$NG/release.json" >/dev/null && break; sleep 0.1; done
for f in release.json config.json config.zst; do
  cmp -s <(curl -sf "$NG/$f") "$WORK/www/$f" || { echo "nginx does not serve $f" >&2; exit 1; }
done

rss() { awk '/^VmRSS/ {print int($2/1024)}' /proc/$JV_PID/status; }
hwm() { awk '/^VmHWM/ {print int($2/1024)}' /proc/$JV_PID/status; }
# Released configurations held in memfds for sendfile are shared memory, not in VmRSS.
memfds() {
  for f in "/proc/$JV_PID/fd"/*; do
    case $(readlink "$f") in /memfd:*) stat -L -c %s "$f";; esac
  done | awk '{n++; s+=$1} END {printf "%d memfd(s), %.1f MiB", n, s/1048576}'
}
etag_of() { curl -sI "$@" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r'; }
run() { # name url headers...
  local url=$1; shift
  wrk -t2 -c64 -d"$DURATION" --latency "$@" "$url" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    END {printf "%s %s %s", rps, p50, p99}'
}

IDLE=$(rss)
JE_P=$(etag_of -H "$A" "$JV$P/release")
JE_C=$(etag_of -H "$A" "$JV$P/release/config")
NE_P=$(etag_of "$NG/release.json")
NE_C=$(etag_of "$NG/config.json")

# The median of ROUNDS runs per server, the two servers alternating (jetvault first in
# odd rounds, nginx first in even ones), so that drift in the machine's speed (other
# tenants, clocks) falls on both sides instead of on whichever ran second.
median() { sort -n -k1,1 | awk '{l[NR]=$0} END {print l[int((NR+1)/2)]}'; }
jv_case() { # case: one wrk run against jetvault
  case $1 in
    pointer)     run "$JV$P/release" -H "$A";;
    pointer-304) run "$JV$P/release" -H "$A" -H "If-None-Match: $JE_P";;
    config)      run "$JV$P/release/config" -H "$A";;
    config-304)  run "$JV$P/release/config" -H "$A" -H "If-None-Match: $JE_C";;
    config-zstd) run "$JV$P/release/config" -H "$A" -H 'Accept-Encoding: zstd';;
    *) echo "unknown case $1" >&2; exit 2;;
  esac
}
ng_case() { # case: the same bytes from nginx
  case $1 in
    pointer)     run "$NG/release.json";;
    pointer-304) run "$NG/release.json" -H "If-None-Match: $NE_P";;
    config)      run "$NG/config.json";;
    config-304)  run "$NG/config.json" -H "If-None-Match: $NE_C";;
    config-zstd) run "$NG/config.zst";;
  esac
}

ROUNDS=${ROUNDS:-3}
echo "wrk -t2 -c64 -d$DURATION, median of $ROUNDS alternating rounds per server;" \
  "zstd frame $(wc -c < "$WORK/www/config.zst") bytes (level ${LEVEL:-3})"
printf '%-12s %12s %9s %9s   %12s %9s %9s   %6s  %s\n' case jv_req/s p50 p99 nginx_req/s p50 p99 ratio "ratio per round"
for c in ${CASES:-pointer pointer-304 config config-304 config-zstd}; do
  js='' ns='' per=''
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then j=$(jv_case "$c"); n=$(ng_case "$c"); else n=$(ng_case "$c"); j=$(jv_case "$c"); fi
    js+="$j"$'\n' ns+="$n"$'\n'
    per+="$(awk -v a="${j%% *}" -v b="${n%% *}" 'BEGIN {printf "%.2f", a/b}') "
  done
  read -r jr jp50 jp99 <<<"$(printf '%s' "$js" | median)"
  read -r nr np50 np99 <<<"$(printf '%s' "$ns" | median)"
  [ "$c" = config ] && NGINX_PLAIN=$nr
  [ "$c" = config-zstd ] && JV_ZSTD=$jr
  printf '%-12s %12s %9s %9s   %12s %9s %9s   %6s  %s\n' "$c" "$jr" "$jp50" "$jp99" "$nr" "$np50" "$np99" \
    "$(awk -v a="$jr" -v b="$nr" 'BEGIN {printf "%.2f", a/b}')" "$per"
done
echo "jetvault RSS: idle ${IDLE} MiB, peak under load $(hwm) MiB; plus $(memfds) for sendfile"
if [ -n "${JV_ZSTD:-}" ] && [ -n "${NGINX_PLAIN:-}" ]; then
  echo "jetvault's zstd passthrough vs nginx's plain config: $(awk -v a="$JV_ZSTD" -v b="$NGINX_PLAIN" 'BEGIN {printf "%.1f", a/b}')x"
fi
