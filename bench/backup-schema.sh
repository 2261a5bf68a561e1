#!/usr/bin/env bash
# Benchmark: what a JSON Schema on the environment adds to one backup of the 1.32 MB
# export to S3 (LocalStack on loopback), as a whole process: `jetvault backup --from`
# without and with `[apps.bench.envs.production.schema]` (bench/schema/walk.json, a
# permissive schema that type-checks every value), alternating run by run so that
# drift in the machine's speed falls on both. Every run backs up a distinct variant of
# the file (the original plus N trailing spaces), so every run really writes.
#
#   bench/backup-schema.sh [RUNS]     (default 21 pairs; JV=path/to/jetvault to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-21}
FILE=tests/data/appsmith-ce-automation-test.json
target=${CARGO_TARGET_DIR:-target}
JV=${JV:-$target/release/jetvault}
[ -x "$JV" ] || { cargo build --release --quiet; JV=$target/release/jetvault; }

eval "$(localstack/localstack.sh start jv-plain jv-schema)"
work=$(mktemp -d)
cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT

printf 'store = "s3://jv-plain"\n' >"$work/plain.toml"
printf 'store = "s3://jv-schema"\n[apps.bench.envs.production.schema]\nfile = "%s"\n' \
  "$PWD/bench/schema/walk.json" >"$work/schema.toml"
for i in $(seq 0 $((2 * RUNS + 2))); do
  { cat "$FILE"; printf '%*s\n' "$i" ''; } >"$work/v$i.json"
done
python3 - "$JV" "$work" "$RUNS" <<'PY'
import statistics, subprocess, sys, time
jv, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def run(kind, i):
    cmd = [jv, "--config", f"{work}/{kind}.toml", "--s3-path-style",
           "backup", "bench", "production", "--from", f"{work}/v{i}.json"]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t
    if out.returncode != 0 or "written" not in out.stdout:
        sys.exit(f"{cmd} failed: {out.stdout}{out.stderr}")
    return took
# One backup each first, so neither pays for creating its store layout in the runs.
run("plain", 0); run("schema", 1)
times = {"plain": [], "schema": []}
for r in range(runs):
    order = ["plain", "schema"] if r % 2 == 0 else ["schema", "plain"]
    for k in order:
        times[k].append(run(k, 2 + 2 * r + (k == "schema")))
med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
ratios = sorted(s / p for p, s in zip(times["plain"], times["schema"]))
print(f"| backup --from, 1.32 MB, to LocalStack | median of {runs} |")
print("|---|---:|")
print(f"| without a schema | {med['plain']:.1f} ms |")
print(f"| with walk.json | {med['schema']:.1f} ms |")
print(f"| ratio of the medians | **{med['schema'] / med['plain']:.3f}x** |")
print(f"| pairwise ratios, quartiles | {ratios[len(ratios)//4]:.3f} / {ratios[len(ratios)//2]:.3f} / {ratios[3*len(ratios)//4]:.3f} |")
PY
