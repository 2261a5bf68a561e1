#!/usr/bin/env bash
# The AWS CLI (v1, from PyPI) in a cached venv, for the tests that check "restore by
# hand" and for people without it.
#
#   localstack/awscli.sh install   install (or reuse) it; prints the path of `aws`
#   localstack/awscli.sh [ARGS..]  run it: localstack/awscli.sh s3 ls --endpoint-url ...
#
# Environment: JETVAULT_CACHE (default ~/.cache/jetvault), JETVAULT_PYTHON.
set -euo pipefail
JV_TOOL=awscli
# shellcheck source=localstack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AWSCLI_VERSION=1.46.3

install() {
  local venv
  venv=$(jv_venv "awscli-$AWSCLI_VERSION" "awscli==$AWSCLI_VERSION" 10 "awscli==$AWSCLI_VERSION")
  printf '%s\n' "$venv/bin/aws"
}

case "${1:-}" in
  install) install ;;
  -h | --help | "") sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
  *) aws=$(install); exec "$aws" "$@" ;;
esac
