#!/usr/bin/env bash
# Benchmark: one backup of a 1.32 MB configuration to S3 (LocalStack on loopback), as a
# whole process, against two references measured in the same run:
#   - restic 0.14 (Debian package) `backup --compression auto` into an S3 repository on
#     the same LocalStack;
#   - the floor: `zstd -3` of the file plus one signed PUT by `curl --aws-sigv4`.
# Each run backs up a distinct variant of the file (the original plus N trailing spaces,
# still valid JSON), so every tool really writes new data. Prints a Markdown report.
#
#   bench/backup.sh [RUNS]        (default 7 runs each; needs restic, hyperfine, curl, zstd)
#
# Uses target/release/jetvault (built here if missing) and localstack/localstack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-7}
FILE=tests/data/appsmith-ce-automation-test.json
for tool in restic hyperfine curl zstd /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install restic hyperfine curl zstd time" >&2; exit 2; }
done
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
JV="$target/release/jetvault"

eval "$(localstack/localstack.sh start jv-bench restic-bench floor-bench)"
work=$(mktemp -d)
cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="s3:$LOCALSTACK_ENDPOINT/restic-bench"
restic init --repository-version 2 >/dev/null

# Variants 0..(3*RUNS+3): distinct content for every run of every tool (warm-ups included).
for i in $(seq 0 $((3 * RUNS + 3))); do
  { cat "$FILE"; printf '%*s\n' "$i" ''; } >"$work/v$i.json"
done
# One backup each first, so no tool pays for creating its store layout in the runs.
"$JV" --store s3://jv-bench --s3-path-style backup bench production --from "$work/v0.json" >/dev/null
restic backup --quiet --compression auto "$work/v0.json" >/dev/null

floor_cmd() {
  echo "zstd -q -3 -c $work/v{i}.json > $work/x{i}.zst && curl -sf -X PUT --aws-sigv4 aws:amz:us-east-1:s3 --user test:test -T $work/x{i}.zst $LOCALSTACK_ENDPOINT/floor-bench/x{i}.zst"
}
hyperfine --style basic --runs "$RUNS" --export-json "$work/h.json" \
  --parameter-scan i 1 "$RUNS" \
  "$(floor_cmd)" \
  "$JV --store s3://jv-bench --s3-path-style backup bench production --from $work/v\$((i+$RUNS)).json" \
  "restic backup --quiet --compression auto $work/v\$((i+2*$RUNS)).json" >&2 2>"$work/hyperfine.log" || { cat "$work/hyperfine.log" >&2; exit 1; }

# Peak memory (max RSS) of one more run of each.
n=$((3 * RUNS + 1))
mem() { /usr/bin/time -f %M bash -c "$1" 2>&1 >/dev/null | tail -1; }
m_floor=$(mem "zstd -q -3 -c $work/v$n.json > $work/m.zst && curl -sf -X PUT --aws-sigv4 aws:amz:us-east-1:s3 --user test:test -T $work/m.zst $LOCALSTACK_ENDPOINT/floor-bench/m.zst")
m_jv=$(mem "$JV --store s3://jv-bench --s3-path-style backup bench production --from $work/v$((n+1)).json")
m_restic=$(mem "restic backup --quiet --compression auto $work/v$((n+2)).json")

python3 - "$work/h.json" "$m_floor" "$m_jv" "$m_restic" "$RUNS" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
mem = dict(zip(["floor", "jetvault", "restic"], map(int, sys.argv[2:5])))
runs = sys.argv[5]
def which(cmd):
    return "floor" if cmd.startswith("zstd") else "restic" if cmd.startswith("restic") else "jetvault"
times = {}
for r in results:  # one result per command and parameter value
    times.setdefault(which(r["command"]), []).extend(r["times"])
med = {k: statistics.median(v) for k, v in times.items()}
print(f"| what | wall (median of {runs}) | peak memory | vs floor | vs restic |")
print("|---|---:|---:|---:|---:|")
for k, desc in [("floor", "floor: `zstd -3` + one `curl --aws-sigv4` PUT"),
                ("jetvault", "`jetvault backup --from` (release build)"),
                ("restic", "restic 0.14 `backup --compression auto`")]:
    print(f"| {desc} | {med[k]*1e3:.1f} ms | {mem[k]/1024:.0f} MiB | "
          f"{med[k]/med['floor']:.2f}x | {med[k]/med['restic']:.3f}x |")
PY
