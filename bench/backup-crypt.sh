#!/usr/bin/env bash
# Benchmark: what age encryption adds to one backup of the 1.32 MB configuration to S3
# (LocalStack on loopback), as a whole process: `jetvault backup --from` into a plain
# environment and into one with two age recipients (an everyday key and an offline one),
# side by side in the same hyperfine run, ROUNDS rounds of RUNS runs each. Each run backs
# up a distinct variant of the file (the original plus N trailing spaces), so every run
# really writes a new snapshot. Prints a Markdown report (medians).
#
#   bench/backup-crypt.sh [RUNS] [ROUNDS]   (default 10 runs, 3 rounds; needs hyperfine)
#
# Uses $CARGO_TARGET_DIR/release/jetvault (built here if missing) and
# localstack/localstack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
ROUNDS=${2:-3}
FILE=tests/data/appsmith-ce-automation-test.json
command -v hyperfine >/dev/null || { echo "missing hyperfine: apt-get install hyperfine" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
JV="$target/release/jetvault"

eval "$(localstack/localstack.sh start crypt-bench)"
work=$(mktemp -d)
cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

# Two fresh keys (the identities are not needed to back up: only public keys).
recipient() { age-keygen 2>&1 >/dev/null | sed -n 's/^Public key: //p'; }
if command -v age-keygen >/dev/null; then
  r1=$(recipient); r2=$(recipient)
else
  echo "missing age-keygen: apt-get install age" >&2; exit 2
fi
cat >"$work/jetvault.toml" <<TOML
store = "s3://crypt-bench"

[s3]
endpoint = "$LOCALSTACK_ENDPOINT"
force_path_style = true

[apps.bench.envs.encrypted.encryption]
recipients = ["$r1", "$r2"]
TOML
export JETVAULT_CONFIG="$work/jetvault.toml"

total=$((2 * RUNS * ROUNDS + 4))
for i in $(seq 0 "$total"); do
  { cat "$FILE"; printf '%*s\n' "$i" ''; } >"$work/v$i.json"
done
# One backup each first, so neither pays for the store marker in the runs.
"$JV" backup bench plain --from "$work/v0.json" >/dev/null
"$JV" backup bench encrypted --from "$work/v1.json" >/dev/null

for round in $(seq 1 "$ROUNDS"); do
  base=$(( 2 + (round - 1) * 2 * RUNS ))
  # One run per parameter value: each run backs up a file no run used before.
  hyperfine --style basic --runs 1 --export-json "$work/h$round.json" \
    --parameter-scan i 0 $((RUNS - 1)) \
    "$JV backup bench plain --from $work/v\$(($base + {i})).json" \
    "$JV backup bench encrypted --from $work/v\$(($base + $RUNS + {i})).json" \
    >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log" >&2; exit 1; }
done
# Both environments hold what was written, the encrypted one as age objects.
"$JV" --json show bench encrypted latest | grep -q '"recipients"' || { echo "the encrypted env is not encrypted" >&2; exit 1; }

python3 - "$work" "$RUNS" "$ROUNDS" <<'PY'
import glob, json, statistics, sys
work, runs, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_round = []
alltimes = {"plain": [], "encrypted": []}
for f in sorted(glob.glob(f"{work}/h*.json")):
    t = {"plain": [], "encrypted": []}
    for r in json.load(open(f))["results"]:
        k = "encrypted" if " encrypted " in r["command"] else "plain"
        t[k].extend(r["times"])
        alltimes[k].extend(r["times"])
    per_round.append({k: statistics.median(v) for k, v in t.items()})
med = {k: statistics.median(v) for k, v in alltimes.items()}
print(f"| backup of the 1.32 MB export | wall (median of {runs * rounds}) | vs plain |")
print("|---|---:|---:|")
print(f"| plain (`zstd`) | {med['plain']*1e3:.1f} ms | 1.00x |")
print(f"| encrypted (`age(zstd)`, 2 recipients) | {med['encrypted']*1e3:.1f} ms | "
      f"**{med['encrypted']/med['plain']:.3f}x** |")
print()
print("Per round (median plain / encrypted, ratio): " + "; ".join(
    f"{r['plain']*1e3:.1f} / {r['encrypted']*1e3:.1f} ms, {r['encrypted']/r['plain']:.3f}x"
    for r in per_round))
PY
