# shellcheck shell=bash
# Shared helpers for localstack.sh, moto.sh and awscli.sh (sourced, not run).
#
# Venvs live in a cache outside the repo so that reruns are fast:
#   ${JETVAULT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jetvault}/<name>
# A venv counts as installed only when its ".installed" stamp matches the recipe, so
# an interrupted or outdated install is redone from scratch.

JV_CACHE="${JETVAULT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jetvault}"

jv_log() { printf '%s: %s\n' "${JV_TOOL:-jetvault}" "$*" >&2; }
jv_die() { jv_log "error: $*"; exit 1; }

# Prints the version of a python interpreter as "MAJOR MINOR", or fails.
jv_py_version() {
  "$1" -c 'import sys; print(sys.version_info[0], sys.version_info[1])' 2>/dev/null
}

# Prints the path of a python3 >= $1.$2 that can create venvs.
# Order: $JETVAULT_PYTHON, the pyenv versions the machine image holds (newest first),
# python3.13/python3.12/python3 on PATH, /usr/bin/python3.
jv_find_python() {
  local want_major=$1 want_minor=$2 cand v maj min
  local -a cands=()
  [[ -n "${JETVAULT_PYTHON:-}" ]] && cands+=("$JETVAULT_PYTHON")
  if command -v pyenv >/dev/null 2>&1; then
    local pv
    for pv in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+\.[0-9]+$' | sort -t. -k2,2nr -k3,3nr); do
      cand=$(PYENV_VERSION=$pv pyenv which python3 2>/dev/null) && cands+=("$cand")
    done
  fi
  for cand in python3.13 python3.12 python3 /usr/bin/python3; do
    command -v "$cand" >/dev/null 2>&1 && cands+=("$(command -v "$cand")")
  done
  for cand in "${cands[@]}"; do
    v=$(jv_py_version "$cand") || continue
    read -r maj min <<<"$v"
    if (( maj == want_major && min >= want_minor )) && "$cand" -c 'import venv, ensurepip' 2>/dev/null; then
      printf '%s\n' "$cand"
      return 0
    fi
  done
  return 1
}

# jv_venv NAME STAMP PY_MIN_MINOR PIP_ARGS...: makes sure the venv NAME exists with the
# packages of the recipe STAMP; prints its path.
jv_venv() {
  local name=$1 stamp=$2 minor=$3; shift 3
  local dir="$JV_CACHE/$name"
  if [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$stamp" ]]; then
    printf '%s\n' "$dir"
    return 0
  fi
  local py
  py=$(jv_find_python 3 "$minor") ||
    jv_die "no Python >= 3.$minor with venv support found; install one (e.g. 'pyenv install 3.13') or set JETVAULT_PYTHON"
  jv_log "installing $name into $dir (with $py; once, then cached)"
  rm -rf "$dir"
  mkdir -p "$JV_CACHE"
  "$py" -m venv "$dir" >&2 || jv_die "cannot create a venv in $dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --upgrade pip >&2 ||
    jv_die "cannot upgrade pip in $dir (is PyPI reachable?)"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 ||
    jv_die "pip install $* failed in $dir (is PyPI reachable?)"
  printf '%s\n' "$stamp" >"$dir/.installed"
  printf '%s\n' "$dir"
}

# Prints a TCP port that is free on 127.0.0.1 right now.
jv_free_port() {
  "${1:-python3}" - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# jv_wait_http URL PID LOG SECONDS [PATTERN]: waits until URL answers (and its body
# matches PATTERN); fails early if PID died, showing the end of LOG.
jv_wait_http() {
  local url=$1 pid=$2 log=$3 secs=$4 pattern=${5:-} body i
  for ((i = 0; i < secs * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$log" >&2 || true
      jv_die "the server (pid $pid) exited during start-up; log above ($log)"
    fi
    if body=$(curl -fsS --max-time 2 "$url" 2>/dev/null); then
      if [[ -z "$pattern" ]] || grep -Eq "$pattern" <<<"$body"; then
        return 0
      fi
    fi
    sleep 0.1
  done
  tail -n 40 "$log" >&2 || true
  jv_die "the server at $url was not ready after ${secs}s; log above ($log)"
}

# jv_serve_url PID OUT ERR [SECONDS]: waits for `jetvault serve` (process PID, its
# stdout in OUT, its stderr in ERR) to print "jetvault listening on URL" and prints
# the URL; fails early if PID died, or after SECONDS (default 20), showing the end of ERR.
jv_serve_url() {
  local pid=$1 out=$2 err=$3 secs=${4:-20} url i
  for ((i = 0; i < secs * 10; i++)); do
    url=$(sed -n 's/^jetvault listening on //p' "$out" 2>/dev/null | head -n1)
    if [[ -n "$url" ]]; then
      printf '%s\n' "$url"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$err" >&2 || true
      jv_die "jetvault serve (pid $pid) exited before listening; its stderr above ($err)"
    fi
    sleep 0.1
  done
  tail -n 40 "$err" >&2 || true
  jv_die "jetvault serve (pid $pid) was not listening after ${secs}s; its stderr above ($err)"
}

# jv_stop PID [DIR]: stops a server this script started (TERM, then KILL after 5 s:
# LocalStack's graceful shutdown sometimes hangs, and its data is thrown away anyway)
# and removes its state directory.
jv_stop() {
  local pid=$1 dir=${2:-} i
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  if [[ -n "$dir" && -f "$dir/.jetvault-server" ]]; then
    rm -rf "$dir"
  fi
}

# jv_create_bucket ENDPOINT BUCKET: creates a bucket on LocalStack or moto, which do
# not check signatures, with a plain PUT (an existing bucket of ours is fine).
jv_create_bucket() {
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "$1/$2") ||
    jv_die "cannot reach $1 to create bucket $2"
  case "$code" in
    200 | 409) ;;
    *) jv_die "creating bucket $2 at $1 answered HTTP $code" ;;
  esac
}
