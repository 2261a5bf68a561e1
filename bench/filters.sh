#!/usr/bin/env bash
# Benchmark: what live-target filters add to one backup of the 1.32 MB export. The same
# live file (tests/data/appsmith-ce-automation-test.json inside an API envelope,
# {"responseMeta", "data", "errorDisplay"}) is backed up to S3 (LocalStack on loopback)
# as a whole process, by `jetvault backup bench production`:
#   - plain:    no filter: the envelope is stored as it is;
#   - read:     read filter `.data`: a path, so the value is cut out of the export while
#               it is parsed (the fast path; other programs parse into jaq's values);
#   - filtered: `.data` and four ignore paths (two through arrays of 60 and 8 items): the
#               export is parsed into jaq's values to hash the document without those
#               paths, and every backup compares that hash with the latest snapshot's (one
#               HEAD; the worst case: the content changed, so the sha256 differs).
# Every run backs up a new variant (another application name), so every run writes a
# snapshot. The modes run in rounds, their order rotating from round to round, so that
# drift in this shared machine falls on all. Prints Markdown.
#
#   bench/filters.sh [RUNS] [ROUNDS]   (default 10 runs per round, 3 rounds; needs
#                                       hyperfine, python3)
#
# Uses $JETVAULT_BIN, else $CARGO_TARGET_DIR/release/jetvault (built here if missing),
# and localstack/localstack.sh. With $JETVAULT_BIN_BEFORE (another build, e.g. of an
# earlier commit), its three modes run in the same rounds, each against its own bucket,
# and the table shows both builds side by side (each mode against its own build's plain).
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

modes=(plain read filtered)
declare -A bin=([plain]=$JV [read]=$JV [filtered]=$JV)
if [[ -n ${JETVAULT_BIN_BEFORE:-} ]]; then
  modes+=(plain-before read-before filtered-before)
  before=$(realpath "$JETVAULT_BIN_BEFORE")
  bin+=([plain-before]=$before [read-before]=$before [filtered-before]=$before)
fi
eval "$(localstack/localstack.sh start "${modes[@]/#/jv-}")"
work=$(mktemp -d)
cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT
nmodes=${#modes[@]}

# Variants: one per run of each mode (warm-ups and the first backup included), each mode
# taking its own range, so that no two runs back up the same content.
per_mode=$((ROUNDS * (RUNS + 1) + 2))
python3 - "$FILE" "$work" $((nmodes * per_mode)) <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for i in range(int(sys.argv[3])):
    doc["exportedApplication"]["name"] = f"bench variant {i}"
    envelope = {"responseMeta": {"status": 200, "success": True}, "data": doc, "errorDisplay": ""}
    with open(f"{sys.argv[2]}/v{i}.json", "w") as f:
        json.dump(envelope, f, indent=2)
PY

for i in "${!modes[@]}"; do
  mode=${modes[$i]}
  cat >"$work/$mode.toml" <<TOML
store = "s3://jv-$mode"
[s3]
force_path_style = true
[apps.bench.envs.production.live]
kind = "file"
path = "$work/live-$mode.json"
TOML
  echo $((i * per_mode)) >"$work/n-$mode"
done
for suffix in "" -before; do
  [[ -f "$work/read$suffix.toml" ]] || continue
  printf '[apps.bench.envs.production.filter]\nread = ".data"\n' >>"$work/read$suffix.toml"
  cat >>"$work/filtered$suffix.toml" <<'TOML'
[apps.bench.envs.production.filter]
read = ".data"
ignore = [".modifiedResources", ".exportedApplication.lastDeployedAt",
          ".actionList[].gitSyncId", ".pageList[].gitSyncId"]
TOML
done
# The next variant into a mode's live file (hyperfine's --prepare, not timed).
cat >"$work/next.sh" <<'SH'
#!/usr/bin/env bash
dir=$(dirname "$0"); n=$(cat "$dir/n-$1"); echo $((n + 1)) >"$dir/n-$1"
cp "$dir/v$n.json" "$dir/live-$1.json"
SH
chmod +x "$work/next.sh"

# One backup each first, so that the runs find a latest snapshot to compare with.
for mode in "${modes[@]}"; do
  "$work/next.sh" "$mode"
  "${bin[$mode]}" --config "$work/$mode.toml" backup bench production >/dev/null
done

for round in $(seq 1 "$ROUNDS"); do
  args=()
  for k in $(seq 0 $((nmodes - 1))); do
    mode=${modes[$(((round - 1 + k) % nmodes))]}
    args+=(--command-name "$mode" --prepare "$work/next.sh $mode"
      "${bin[$mode]} --config $work/$mode.toml backup bench production")
  done
  hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/r$round.json" "${args[@]}" \
    >"$work/hyperfine.log" 2>&1 || { cat "$work/hyperfine.log" >&2; exit 1; }
done
live_size=$(stat -c %s "$work/v0.json")

python3 - "$work" "$ROUNDS" "$RUNS" "$live_size" "${modes[@]}" <<'PY'
import json, statistics, sys
work, rounds, runs, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
modes = sys.argv[5:]
plain_of = lambda m: "plain-before" if m.endswith("-before") else "plain"
per = {m: [] for m in modes}
ratios = {m: [] for m in modes}
for r in range(1, rounds + 1):
    res = {x["command"]: x["times"] for x in json.load(open(f"{work}/r{r}.json"))["results"]}
    for m in modes:
        per[m].extend(res[m])
        ratios[m].append(statistics.median(res[m]) / statistics.median(res[plain_of(m)]))
med = {m: statistics.median(v) for m, v in per.items()}
desc = {"plain": "no filter (the envelope is stored)",
        "read": "read filter `.data`",
        "filtered": "read filter `.data` + 4 ignore paths, content changed"}
print(f"live file: {size:,} bytes")
print()
print(f"| build | `jetvault backup` of the export | wall (median of {rounds}x{runs}) | vs no filter | per round |")
print("|---|---|---:|---:|---|")
for m in modes:
    build = "before" if m.endswith("-before") else "this"
    rr = " ".join(f"{x:.3f}" for x in ratios[m])
    print(f"| {build} | {desc[m.removesuffix('-before')]} | {med[m]*1e3:.1f} ms | "
          f"**{med[m]/med[plain_of(m)]:.3f}** | {rr} |")
PY
