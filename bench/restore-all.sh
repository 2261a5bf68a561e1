#!/usr/bin/env bash
# Benchmark: `jetvault restore-all` of N small environments (file live targets, store on
# LocalStack on loopback), against single `jetvault restore --at ... --yes` commands run
# one after another, the way a shell loop does it today (SEQ of them, the rate
# extrapolated). Every environment is damaged first, so every restore really saves,
# pushes and reads back. Prints a Markdown report, with the store requests per
# environment that restore-all and its undo cost (from their `--json` reports).
#
#   bench/restore-all.sh [N] [SEQ] [CONCURRENCY]    (default 1000 100 16)
#
# Uses target/release/jetvault (built here if missing), or the binary in $JV;
# localstack/localstack.sh starts LocalStack.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000} SEQ=${2:-100} C=${3:-16}
target=${CARGO_TARGET_DIR:-target}
if [[ -z "${JV:-}" ]]; then
  cargo build --release --quiet
  JV="$target/release/jetvault"
fi

eval "$(localstack/localstack.sh start jv-restore-all)"
work=$(mktemp -d)
cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT JETVAULT_AUTHOR=bench

mkdir -p "$work/live"
{
  echo 'store = "s3://jv-restore-all"'
  for i in $(seq 1 "$N"); do
    printf '[apps.a%04d.envs.prod]\nlive = { kind = "file", path = "%s/live/a%04d.json" }\n' "$i" "$work" "$i"
  done
} >"$work/jv.toml"
jv() { "$JV" --config "$work/jv.toml" --s3-path-style "$@"; }
now() { date +%s.%N; }
good() { printf '{"app":"a%04d","flows":[{"id":"f1","url":"/orders"},{"id":"f2","url":"/customers"}]}\n' "$1"; }
bad() { printf '{"app":"a%04d","flows":[],"migrated":true}\n' "$1"; }

for i in $(seq 1 "$N"); do good "$i" >"$work/live/a$(printf %04d "$i").json"; done
t0=$(now); jv backup-all --concurrency "$C" >/dev/null; t_backup=$(echo "$(now) - $t0" | bc)
sleep 1; AT=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ); sleep 1
for i in $(seq 1 "$N"); do bad "$i" >"$work/live/a$(printf %04d "$i").json"; done
jv backup-all --concurrency "$C" >/dev/null

t0=$(now)
jv --json restore-all --all --at "$AT" --yes --concurrency "$C" 2>/dev/null >"$work/run.json"
t_all=$(echo "$(now) - $t0" | bc)
run=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["restored"]==int(sys.argv[2]) and r["failed"]==0, r["failed"]; print(r["run"]["id"])' "$work/run.json" "$N")

# Damage again (the undo does it: every environment back to its damaged version).
t0=$(now); jv --json restore-all --undo "$run" --yes --concurrency "$C" 2>/dev/null >"$work/undo.json"; t_undo=$(echo "$(now) - $t0" | bc)

t0=$(now)
for i in $(seq 1 "$SEQ"); do jv restore "a$(printf %04d "$i")" prod --at "$AT" --yes >/dev/null; done
t_seq=$(echo "$(now) - $t0" | bc)

python3 - "$N" "$SEQ" "$C" "$t_all" "$t_seq" "$t_undo" "$t_backup" "$work/run.json" "$work/undo.json" <<'PY'
import json, sys
n, seq, c = map(int, sys.argv[1:4])
t_all, t_seq, t_undo, t_backup = map(float, sys.argv[4:8])
reqs = [json.load(open(f)).get("requests", {}) for f in sys.argv[8:10]]
rate_all, rate_seq = n / t_all, seq / t_seq
print(f"| what | environments | wall | environments/s |")
print("|---|---:|---:|---:|")
print(f"| `restore-all --at T --concurrency {c}` | {n} | {t_all:.1f} s | {rate_all:.1f} |")
print(f"| `restore-all --undo RUN --concurrency {c}` | {n} | {t_undo:.1f} s | {n / t_undo:.1f} |")
print(f"| `restore APP prod --at T --yes`, one after another | {seq} | {t_seq:.1f} s | {rate_seq:.1f} |")
print(f"| `backup-all --concurrency {c}` (setup) | {n} | {t_backup:.1f} s | {n / t_backup:.1f} |")
print()
print(f"restore-all throughput: {rate_all / rate_seq:.1f}x that of sequential `restore` commands "
      f"({n} environments in {t_all:.1f} s; sequentially about {n / rate_seq:.0f} s)")
for what, r in zip(["restore-all", "undo"], reqs):
    if r:
        total = sum(r.values())
        ops = ", ".join(f"{op} {v / n:.1f}" for op, v in r.items() if v)
        print(f"\n{what}: {total} store requests, {total / n:.1f} per environment ({ops})")
PY
