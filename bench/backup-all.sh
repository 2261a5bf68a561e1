#!/usr/bin/env bash
# Benchmark P5: `jetvault backup-all` of N environments with small real configurations
# (tests/data: the Node-RED, Appsmith and Grafana exports, 6 to 100 KB, one per
# environment in turn; file live targets), store on LocalStack on loopback, against a
# raw-PUT reference client at the same concurrency, measured in the same run:
# benches/raw_put.rs, N plain PutObject requests of the same files compressed the same
# way, with the same SDK. Rounds alternate raw PUT and backup-all so that drift in
# LocalStack hits both. Each backup-all round after the first uses --force, so every
# round writes N snapshots (round 1: empty histories; later rounds: a new version on
# top of the latest). Also reports the peak resident memory of backup-all and the store
# requests per backup (counted by jetvault itself). Prints a Markdown report.
#
#   bench/backup-all.sh [N] [CONCURRENCY] [ROUNDS]     (default 10000 32 3)
#
# Uses target/release/jetvault (built here if missing), or the binary in $JV, and the
# raw_put bench binary (built here), or the one in $RAW;
# localstack/localstack.sh starts LocalStack.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000} C=${2:-32} ROUNDS=${3:-3}
FILES=(tests/data/nodered-http-endpoint-example.json tests/data/appsmith-import-app-all-access.json tests/data/grafana-k8s-views-nodes.json)
target=${CARGO_TARGET_DIR:-target}
if [[ -z "${JV:-}" ]]; then
  cargo build --release --quiet
  JV="$target/release/jetvault"
fi
# The reference client, built in the bench profile (release settings), or $RAW.
[[ -n "${RAW:-}" ]] || RAW=$(cargo bench --bench raw_put --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "raw_put" and m.get("executable"):
        print(m["executable"])')

eval "$(localstack/localstack.sh start jv-backup-all raw-put)"
work=$(mktemp -d)
cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT JETVAULT_AUTHOR=bench

{
  echo 'store = "s3://jv-backup-all"'
  for i in $(seq 0 $((N - 1))); do
    printf '[apps.a%05d.envs.prod]\nlive = { kind = "file", path = "%s" }\n' "$i" "$PWD/${FILES[$((i % 3))]}"
  done
} >"$work/jv.toml"

now() { date +%s.%N; }
: >"$work/rows"
for r in $(seq 1 "$ROUNDS"); do
  "$RAW" raw-put "$N" "$C" "${FILES[@]}" >"$work/raw.json"
  raw_rate=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["per_second"])' "$work/raw.json")
  force=(); ((r > 1)) && force=(--force)
  t0=$(now)
  /usr/bin/time -f '%M' -o "$work/rss" "$JV" --config "$work/jv.toml" --s3-path-style \
    backup-all --concurrency "$C" "${force[@]}" >"$work/out" 2>"$work/err" ||
    { tail -n 5 "$work/err" "$work/out" >&2; exit 1; }
  t=$(echo "$(now) - $t0" | bc)
  summary=$(tail -n 1 "$work/out")
  echo "$r $raw_rate $t $(cat "$work/rss") $summary" >>"$work/rows"
done

python3 - "$N" "$C" "$work/rows" <<'PY'
import re, statistics, sys
n, c = int(sys.argv[1]), int(sys.argv[2])
rows = []
for line in open(sys.argv[3]):
    r, raw, t, rss, summary = line.split(" ", 4)
    m = re.search(r"(\d+) written, (\d+) unchanged, (\d+) failed; (\d+) store requests \(([^)]*)\)", summary)
    assert m, summary
    written, unchanged, failed, requests = map(int, m.groups()[:4])
    assert written == n and failed == 0, summary
    rows.append(dict(round=int(r), raw=float(raw), t=float(t), rss_mb=int(rss) / 1024,
                     requests=requests, ops=m.group(5)))
print(f"N = {n} environments, concurrency {c}\n")
print("| round | raw PUT/s | backup-all envs/s | ratio | wall | peak RSS | store requests per backup |")
print("|---:|---:|---:|---:|---:|---:|---|")
for x in rows:
    rate = n / x["t"]
    print(f"| {x['round']} | {x['raw']:.0f} | {rate:.0f} | {rate / x['raw']:.2f}x | {x['t']:.1f} s "
          f"| {x['rss_mb']:.0f} MB | {x['requests'] / n:.2f} ({x['ops']}) |")
ratios = [n / x["t"] / x["raw"] for x in rows]
print(f"\nmedian ratio {statistics.median(ratios):.2f}x of raw PUT (goal >= 0.8x); "
      f"peak RSS max {max(x['rss_mb'] for x in rows):.0f} MB (goal <= 64 MB)")
PY
