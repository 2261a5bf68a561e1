#!/usr/bin/env bash
# Benchmark: resident memory of `jetvault serve` with N scheduled environments (file live
# targets, local directory store), against the same config with no schedules (the
# config, live targets and HTTP service alone), so the difference is the scheduler's own
# state. The schedules do not fire during the measure (a daily cron), unless FIRE=1
# (every 10 seconds, spread over the interval: the runs' memory is then included).
# Prints a Markdown report.
#
#   bench/scheduler-memory.sh [N] [SETTLE_SECONDS]     (default 10000 8)
#
# Uses target/release/jetvault (built here if missing), or the binary in $JV; a second
# binary in $JV_OLD (e.g. a build of an older commit) is measured the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=localstack/lib.sh
source localstack/lib.sh
JV_TOOL=bench/scheduler-memory.sh
N=${1:-10000} SETTLE=${2:-8}
target=${CARGO_TARGET_DIR:-target}
if [[ -z "${JV:-}" ]]; then
  cargo build --release --quiet
  JV="$target/release/jetvault"
fi
work=$(mktemp -d)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
echo '{"flows":[{"id":"f1","url":"/orders"}]}' >"$work/live.json"
cron='0 0 3 * * *'
[[ "${FIRE:-0}" == 1 ]] && cron='*/10 * * * * *'

config() { # $1: file, $2: with schedules (1/0)
  {
    echo "store = \"file://$work/store\""
    printf '[server]\nlisten = "127.0.0.1:0"\n'
    for i in $(seq 1 "$N"); do
      printf '[apps.a%05d.envs.prod]\n' "$i"
      [[ "$2" == 1 ]] && printf 'schedule = "%s"\n' "$cron"
      printf 'live = { kind = "file", path = "%s/live.json" }\n' "$work"
    done
  } >"$1"
}
config "$work/plain.toml" 0
config "$work/sched.toml" 1

rss_kib() { # $1: binary, $2: config -> VmRSS in KiB after SETTLE seconds
  "$1" --config "$2" serve --listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
  pid=$!
  jv_serve_url "$pid" "$work/out" "$work/err" 60 >/dev/null
  sleep "$SETTLE"
  awk '/VmRSS/ {print $2}' "/proc/$pid/status"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
}

report() { # $1: label, $2: binary
  local plain sched
  plain=$(rss_kib "$2" "$work/plain.toml")
  sched=$(rss_kib "$2" "$work/sched.toml")
  python3 - "$1" "$N" "$plain" "$sched" <<'PY'
import sys
label, n, plain, sched = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
per = (sched - plain) * 1024 / n
print(f"| {label} | {n} | {plain/1024:.1f} MiB | {sched/1024:.1f} MiB | {per:.0f} B |")
PY
}

echo "| binary | environments | RSS, no schedules | RSS, all scheduled | scheduler bytes per environment |"
echo "|---|---:|---:|---:|---:|"
report "$(basename "$JV") (this tree)" "$JV"
if [[ -n "${JV_OLD:-}" ]]; then report "JV_OLD" "$JV_OLD"; fi
