#!/usr/bin/env bash
# Benchmark: the web console in headless Chromium (Debian's chromium and chromedriver,
# platforms/chromium.sh), against `jetvault serve` (release build) on a directory store:
#   - the overview with ENVS environments (default 1000), each with a snapshot and every
#     tenth with a release: time from navigation start to the table being in the page
#     (the console's `jetvault:overview` performance mark; goal: under 1 s), split at
#     the data having arrived (`jetvault:overview-data`);
#   - a history page of 50 versions: time from the data having arrived to the table being
#     in the page (`jetvault:history-data` to `jetvault:history-rendered`; goal: 200 ms);
#   - `GET /v1/envs` alone (the overview's data), from a plain HTTP client.
# Each is loaded RUNS times (default 7) in a fresh page; prints a Markdown report.
#
#   bench/console.sh [RUNS] [ENVS]      JV=path/to/jetvault to use another build
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=localstack/lib.sh
source localstack/lib.sh
JV_TOOL=bench/console.sh
RUNS=${1:-7}
ENVS=${2:-1000}
for tool in curl python3 chromedriver chromium; do
  command -v "$tool" >/dev/null || { echo "missing $tool (platforms/chromium.sh install)" >&2; exit 2; }
done
if [[ -z "${JV:-}" ]]; then
  cargo build --release --quiet
  JV="${CARGO_TARGET_DIR:-target}/release/jetvault"
fi

work=$(mktemp -d)
SERVE_PID='' CD_PID='' CD_DIR=''
cleanup() {
  if [[ -n "$SERVE_PID" ]]; then kill "$SERVE_PID" 2>/dev/null || true; fi
  if [[ -n "$CD_PID" ]]; then platforms/chromium.sh stop "$CD_PID" "$CD_DIR" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The store: ENVS environments written by the library's own backup path (one process
# per 100 environments would be faster, but a config file of ENVS tables is what a
# platform this size has: each is backed up with --from).
store="file://$work/store"
flow=tests/data/nodered-http-endpoint-example.json
echo "creating $ENVS environments..." >&2
for i in $(seq -w 1 "$ENVS"); do
  "$JV" --store "$store" backup "app$i" production --from "$flow" >/dev/null
  if [[ $((10#$i % 10)) -eq 0 ]]; then
    "$JV" --store "$store" release "app$i" production latest --label 1.0.0 >/dev/null
  fi
done
# One environment with a long history, for the history page.
for n in $(seq 1 60); do
  { cat "$flow"; printf '%*s\n' "$n" ''; } >"$work/h.json"
  "$JV" --store "$store" backup history production --from "$work/h.json" -m "edit $n" >/dev/null
done

"$JV" --store "$store" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
SERVE_PID=$!
base=$(jv_serve_url "$SERVE_PID" "$work/serve.out" "$work/serve.err" 10)
eval "$(platforms/chromium.sh start)"
CD_PID=$CHROMEDRIVER_PID CD_DIR=$CHROMEDRIVER_DIR

python3 - "$CHROMEDRIVER_URL" "$base" "$RUNS" "$ENVS" <<'PY'
import json, statistics, sys, time, urllib.request

driver, base, runs, envs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def call(method, path, body=None):
    req = urllib.request.Request(driver + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]

caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--window-size=1280,800"]}}}}
sid = call("POST", "/session", caps)["sessionId"]

def mark(name, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        v = call("POST", f"/session/{sid}/execute/sync", {"script":
            "const m = performance.getEntriesByName(arguments[0]); return m.length ? m[0].startTime : null;",
            "args": [name]})
        if v is not None:
            return v
        time.sleep(0.02)
    raise SystemExit(f"no performance mark {name} after {timeout}s")

def stats(xs):
    xs = sorted(xs)
    return f"{statistics.median(xs):.0f} ms (min {xs[0]:.0f}, max {xs[-1]:.0f})"

overview, history, envs_api = [], [], []
overview_data, overview_render, timing = [], [], []
try:
    for _ in range(runs + 1):  # the first load warms the service's and browser's caches
        call("POST", f"/session/{sid}/url", {"url": "about:blank"})
        call("POST", f"/session/{sid}/url", {"url": base + "/"})
        overview.append(mark("jetvault:overview"))
        try:  # builds before the split have no such mark
            data = mark("jetvault:overview-data", 1)
            overview_data.append(data)
            overview_render.append(overview[-1] - data)
        except SystemExit:
            pass
        # Where the time went: the page's own requests (Resource Timing).
        timing.append(call("POST", f"/session/{sid}/execute/sync", {"script":
            "const n = performance.getEntriesByType('navigation')[0];"
            "const r = performance.getEntriesByType('resource').filter(e => e.name.endsWith('/v1/envs'))[0];"
            "return r ? [n.domContentLoadedEventStart, r.startTime, r.responseStart, r.responseEnd] : null;",
            "args": []}))
        rows = call("POST", f"/session/{sid}/execute/sync",
                    {"script": "return document.querySelectorAll('#envs tbody tr').length", "args": []})
        assert rows >= envs, f"the overview shows {rows} environments, not {envs}"
    for _ in range(runs + 1):
        call("POST", f"/session/{sid}/url", {"url": "about:blank"})
        call("POST", f"/session/{sid}/url", {"url": base + "/#/e/history/production"})
        rendered = mark("jetvault:history-rendered")
        data = mark("jetvault:history-data")
        rows = call("POST", f"/session/{sid}/execute/sync",
                    {"script": "return document.querySelectorAll('#history tbody tr').length", "args": []})
        assert rows == 50, f"the history page shows {rows} rows, not 50"
        history.append(rendered - data)
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        with urllib.request.urlopen(base + "/v1/envs", timeout=120) as r:
            n = len(json.load(r)["envs"])
        envs_api.append((time.perf_counter() - t0) * 1000)
        assert n >= envs, f"GET /v1/envs lists {n} environments, not {envs}"
finally:
    call("DELETE", f"/session/{sid}")

print(f"| page | goal | measured (median of {runs}, after one warm-up) |")
print("|---|---|---|")
print(f"| overview, {envs} environments: navigation to table | < 1000 ms | {stats(overview[1:])} |")
steps = [t for t in timing[1:] if t]
if steps:
    print(f"| overview: navigation to DOMContentLoaded | | {stats([t[0] for t in steps])} |")
    print(f"| overview: navigation to GET /v1/envs sent | | {stats([t[1] for t in steps])} |")
    print(f"| overview: GET /v1/envs sent to its first byte | | {stats([t[2] - t[1] for t in steps])} |")
    print(f"| overview: GET /v1/envs first to last byte | | {stats([t[3] - t[2] for t in steps])} |")
if overview_data[1:]:
    print(f"| overview: navigation to its data arrived (parsed) | | {stats(overview_data[1:])} |")
    print(f"| overview: data arrived to table | | {stats(overview_render[1:])} |")
print(f"| history, 50 versions: data arrived to table | < 200 ms | {stats(history[1:])} |")
print(f"| GET /v1/envs, {envs} environments (HTTP client) | | {stats(envs_api[1:])} |")
PY
