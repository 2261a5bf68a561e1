#!/usr/bin/env bash
# Benchmark: what live-target filters add to one backup of the 1.32 MB export. The same
# live file (tests/data/appsmith-ce-automation-test.json inside an API envelope,
# {"responseMeta", "data", "errorDisplay"}) is backed up to S3 (LocalStack on loopback)
# as a whole process, by `jetvault backup bench production`:
#   - plain:    no filter: the envelope is stored as it is;
#   - filtered: read filter `.data` and four ignore paths (two through arrays of 60 and 8
#               items), so that every backup also reads the latest snapshot back and
#               compares both documents without the ignored paths (the worst case: the
#               content changed, so the comparison cannot stop at the sha256).
# Every run backs up a new variant (another application name), so every run writes a
# snapshot. The two run in alternating rounds (plain first in odd rounds, filtered first
# in even ones) so that drift in this shared machine falls on both. Prints Markdown.
#
#   bench/filters.sh [RUNS] [ROUNDS]   (default 10 runs per round, 3 rounds; needs
#                                       hyperfine, python3)
#
# Uses $JETVAULT_BIN, else $CARGO_TARGET_DIR/release/jetvault (built here if missing),
# and localstack/localstack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
ROUNDS=${2:-3}
FILE=tests/data/appsmith-ce-automation-test.json
for tool in hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install hyperfine python3" >&2; exit 2; }
done
if [[ -n ${JETVAULT_BIN:-} ]]; then
  JV=$(realpath "$JETVAULT_BIN")
else
  target=${CARGO_TARGET_DIR:-target}
  cargo build --release --quiet --bin jetvault
  JV=$(realpath "$target/release/jetvault")
fi

eval "$(localstack/localstack.sh start jv-plain jv-filtered)"
work=$(mktemp -d)
cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT

# Variants: one per run of each mode, warm-ups and the first backups included.
count=$((2 * ROUNDS * (RUNS + 2) + 4))
python3 - "$FILE" "$work" "$count" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for i in range(int(sys.argv[3])):
    doc["exportedApplication"]["name"] = f"bench variant {i}"
    envelope = {"responseMeta": {"status": 200, "success": True}, "data": doc, "errorDisplay": ""}
    with open(f"{sys.argv[2]}/v{i}.json", "w") as f:
        json.dump(envelope, f, indent=2)
PY

for mode in plain filtered; do
  cat >"$work/$mode.toml" <<EOF
store = "s3://jv-$mode"
[s3]
force_path_style = true
[apps.bench.envs.production.live]
kind = "file"
path = "$work/live-$mode.json"
EOF
  echo 0 >"$work/n-$mode"
done
cat >>"$work/filtered.toml" <<'EOF'
[apps.bench.envs.production.filter]
read = ".data"
ignore = [".modifiedResources", ".exportedApplication.lastDeployedAt",
          ".actionList[].gitSyncId", ".pageList[].gitSyncId"]
EOF
# The next variant into a mode's live file (hyperfine's --prepare, not timed).
cat >"$work/next.sh" <<'EOF'
#!/usr/bin/env bash
dir=$(dirname "$0"); n=$(cat "$dir/n-$1"); echo $((n + 1)) >"$dir/n-$1"
cp "$dir/v$n.json" "$dir/live-$1.json"
EOF
chmod +x "$work/next.sh"
# The second mode takes its variants from the upper half, so no two runs share content.
echo $((count / 2)) >"$work/n-filtered"

for mode in plain filtered; do
  "$work/next.sh" "$mode"
  "$JV" --config "$work/$mode.toml" backup bench production >/dev/null
done

for round in $(seq 1 "$ROUNDS"); do
  if ((round % 2)); then order=(plain filtered); else order=(filtered plain); fi
  args=()
  for mode in "${order[@]}"; do
    args+=(--command-name "$mode" --prepare "$work/next.sh $mode" "$JV --config $work/$mode.toml backup bench production")
  done
  hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/r$round.json" "${args[@]}" \
    >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log" >&2; exit 1; }
done

python3 - "$work" "$ROUNDS" "$RUNS" <<'PY'
import json, statistics, sys
work, rounds, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
per = {"plain": [], "filtered": []}
ratios = []
for r in range(1, rounds + 1):
    res = {x["command"]: x["times"] for x in json.load(open(f"{work}/r{r}.json"))["results"]}
    for k in per:
        per[k].extend(res[k])
    ratios.append(statistics.median(res["filtered"]) / statistics.median(res["plain"]))
med = {k: statistics.median(v) for k, v in per.items()}
print(f"| backup of the 1.32 MB export | wall (median of {rounds}x{runs}) | vs plain |")
print("|---|---:|---:|")
print(f"| plain: no filter | {med['plain']*1e3:.1f} ms | 1.000 |")
print(f"| filtered: read `.data` + 4 ignore paths | {med['filtered']*1e3:.1f} ms | "
      f"**{med['filtered']/med['plain']:.3f}** |")
print()
print("per round (filtered / plain, medians): " + " ".join(f"{x:.3f}" for x in ratios))
PY
