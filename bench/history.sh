#!/usr/bin/env bash
# Browsing a long history on S3 (LocalStack on loopback): seeds one environment with
# 10,000 versions and one with a single version, then reports the store requests that
# `latest` costs in each (it must not grow with the history) and the time of `latest`
# and of the first page of 50 (`jetvault list`'s work: one LIST, 50 HEADs, 16 at a time).
#
#   bench/history.sh           (starts and stops its own LocalStack)
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(localstack/localstack.sh start history-bench)"
trap 'localstack/localstack.sh stop "$LOCALSTACK_PID" "$LOCALSTACK_DIR" >/dev/null 2>&1 || true' EXIT
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  AWS_ENDPOINT_URL="$LOCALSTACK_ENDPOINT" JETVAULT_BENCH_STORE=s3://history-bench \
  JETVAULT_BENCH_PATH_STYLE=1 cargo bench --quiet --bench history
