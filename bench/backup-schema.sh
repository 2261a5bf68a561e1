#!/usr/bin/env bash
# Benchmark: what a JSON Schema on the environment adds to one backup of the 1.32 MB
# export to S3 (LocalStack on loopback), as a whole process: `jetvault backup --from`
# without and with `[apps.bench.envs.production.schema]` (bench/schema/walk.json, a
# permissive schema that type-checks every value), alternating run by run so that
# drift in the machine's speed falls on both. Every run backs up a distinct variant of
# the file (the original plus N trailing spaces), so every run really writes.
#
#   bench/backup-schema.sh [RUNS]     (default 21 pairs; JV=path/to/jetvault to skip the build)
#
# With JV_BEFORE=path/to/another/jetvault (e.g. a build of an earlier commit), each round
# also runs that build's pair, against buckets of its own, and the table shows both.
# With STORE=file the backups go to local directories instead of LocalStack (no server):
# what the check costs without the store's round trips around it. With VIA=serve the
# backups are made by a running `jetvault serve` (`POST .../backup` of a file live target
# rewritten before each one), one server per build, as the scheduler and the API make
# them: the schema compiles once per server, not once per backup. The table ends with a
# 95% bootstrap interval of the ratio: how far it moves with the sample.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=localstack/lib.sh
source localstack/lib.sh
JV_TOOL=bench/backup-schema.sh
RUNS=${1:-21}
FILE=tests/data/appsmith-ce-automation-test.json
target=${CARGO_TARGET_DIR:-target}
JV=${JV:-$target/release/jetvault}
[ -x "$JV" ] || { cargo build --release --quiet; JV=$target/release/jetvault; }

kinds=(plain schema)
[ -n "${JV_BEFORE:-}" ] && kinds+=(plain-before schema-before)
work=$(mktemp -d)
if [ "${STORE:-s3}" = file ]; then
  store() { echo "file://$work/store-$1"; }
  cleanup() { rm -rf "$work"; }
else
  eval "$(localstack/localstack.sh start "${kinds[@]/#/jv-}")"
  store() { echo "s3://jv-$1"; }
  cleanup() { localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export AWS_ENDPOINT_URL=$LOCALSTACK_ENDPOINT
fi
servers=()
stop_all() {
  for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; done
  cleanup
}
trap stop_all EXIT

for suffix in "" -before; do
  printf 'store = "%s"\n' "$(store "plain$suffix")" >"$work/plain$suffix.toml"
  printf 'store = "%s"\n[apps.bench.envs.production.schema]\nfile = "%s"\n' \
    "$(store "schema$suffix")" "$PWD/bench/schema/walk.json" >"$work/schema$suffix.toml"
done
for i in $(seq 0 $((4 * RUNS + 8))); do
  { cat "$FILE"; printf '%*s\n' "$i" ''; } >"$work/v$i.json"
done
if [ "${VIA:-cli}" = serve ]; then
  # One server per build, two apps in its store: `plain`, and `schema` with walk.json.
  for suffix in "" -before; do
    [ -z "$suffix" ] || [ -n "${JV_BEFORE:-}" ] || continue
    bin=$JV; [ -z "$suffix" ] || bin=$JV_BEFORE
    cat >"$work/serve$suffix.toml" <<EOF
store = "$(store "plain$suffix")"
[[server.tokens]]
name = "bench"
role = "operate"
value = "bench-token"
[apps.plain.envs.production.live]
kind = "file"
path = "$work/live-plain$suffix.json"
[apps.schema.envs.production.live]
kind = "file"
path = "$work/live-schema$suffix.json"
[apps.schema.envs.production.schema]
file = "$PWD/bench/schema/walk.json"
EOF
    RUST_LOG=warn "$bin" --config "$work/serve$suffix.toml" --s3-path-style serve \
      --listen 127.0.0.1:0 >"$work/serve$suffix.out" 2>"$work/serve$suffix.err" &
    servers+=($!)
    jv_serve_url "${servers[-1]}" "$work/serve$suffix.out" "$work/serve$suffix.err" 10 >"$work/url$suffix"
  done
fi
python3 - "$JV" "$work" "$RUNS" "${JV_BEFORE:-}" "${STORE:-s3}" "${VIA:-cli}" <<'PY'
import http.client, random, shutil, statistics, subprocess, sys, time, urllib.parse
jv, work, runs, before, store, via = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
conns = {}
def post(kind, i):
    suffix = "-before" if kind.endswith("-before") else ""
    app = kind.removesuffix("-before")
    shutil.copyfile(f"{work}/v{i}.json", f"{work}/live-{app}{suffix}.json")
    if suffix not in conns:
        url = urllib.parse.urlsplit(open(f"{work}/url{suffix}").read().strip())
        conns[suffix] = http.client.HTTPConnection(url.hostname, url.port)
    c = conns[suffix]
    t = time.perf_counter()
    c.request("POST", f"/v1/apps/{app}/envs/production/backup", body=b"{}",
              headers={"Authorization": "Bearer bench-token", "Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    took = time.perf_counter() - t
    if r.status != 201:
        sys.exit(f"POST {app} backup ({kind}): {r.status} {body[:300]!r}")
    return took
def run(kind, i):
    if via == "serve":
        return post(kind, i)
    binary = before if kind.endswith("-before") else jv
    cmd = [binary, "--config", f"{work}/{kind}.toml", "--s3-path-style",
           "backup", "bench", "production", "--from", f"{work}/v{i}.json"]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t
    if out.returncode != 0 or "written" not in out.stdout:
        sys.exit(f"{cmd} failed: {out.stdout}{out.stderr}")
    return took
kinds = ["plain", "schema"] + (["plain-before", "schema-before"] if before else [])
# One backup each first, so none pays for creating its store layout in the runs.
for n, k in enumerate(kinds):
    run(k, n)
times = {k: [] for k in kinds}
for r in range(runs):
    order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
    for k in order:
        times[k].append(run(k, len(kinds) * (r + 1) + kinds.index(k)))
med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
builds = [("this build", "")] + ([("before", "-before")] if before else [])
how = "POST .../backup to jetvault serve" if via == "serve" else "backup --from"
print(f"| {how}, 1.32 MB, to {'a directory' if store == 'file' else 'LocalStack'} | " + " | ".join(f"{b}, median of {runs}" for b, _ in builds) + " |")
print("|---|" + "---:|" * len(builds))
print("| without a schema | " + " | ".join(f"{med['plain' + s]:.1f} ms" for _, s in builds) + " |")
print("| with walk.json | " + " | ".join(f"{med['schema' + s]:.1f} ms" for _, s in builds) + " |")
print("| ratio of the medians | " + " | ".join(f"**{med['schema' + s] / med['plain' + s]:.3f}x**" for _, s in builds) + " |")
def quartiles(s):
    r = sorted(b / a for a, b in zip(times["plain" + s], times["schema" + s]))
    return f"{r[len(r)//4]:.3f} / {r[len(r)//2]:.3f} / {r[3*len(r)//4]:.3f}"
print("| pairwise ratios, quartiles | " + " | ".join(quartiles(s) for _, s in builds) + " |")
# How far the ratio of the medians moves with the sample: resample the rounds (with
# replacement) 2,000 times, the middle 95% of the ratios.
def interval(s):
    rng, plain, schema = random.Random(1), times["plain" + s], times["schema" + s]
    ratios = []
    for _ in range(2000):
        picks = [rng.randrange(runs) for _ in range(runs)]
        ratios.append(statistics.median(schema[i] for i in picks) / statistics.median(plain[i] for i in picks))
    ratios.sort()
    return f"{ratios[50]:.3f} to {ratios[1949]:.3f}"
print("| ratio of the medians, 95% bootstrap interval | " + " | ".join(interval(s) for _, s in builds) + " |")
PY
