#!/usr/bin/env bash
# Validates every deployment file with real validators, offline once the tools are
# installed:
#
#   configs     every *.toml in examples/, examples/platforms/, deploy/ and localstack/,
#               and the TOML inside the Kubernetes ConfigMap: `jetvault config check` of
#               the built binary
#   kubernetes  yamllint; kubernetes-validate --strict against the Kubernetes JSON
#               schemas (several versions); cross-references (check_refs.py)
#   systemd     systemd-analyze verify (no warning allowed), systemd-analyze security
#               (exposure threshold), systemd-sysusers --dry-run, the env file
#   compose     yamllint; the compose-spec JSON schema (check-jsonschema); bind mounts,
#               secrets, build inputs; also localstack/ compose files when present
#   dockerfile  hadolint; BuildKit's parser; non-root USER, HEALTHCHECK on /healthz,
#               EXPOSE, ENTRYPOINT; COPY sources exist and pass .dockerignore
#
# Usage: deploy/validate.sh [--self-test] [JETVAULT_BIN]
#   JETVAULT_BIN    the jetvault binary (argument or env; default: the debug build in
#                   $CARGO_TARGET_DIR or target/)
#   --self-test     then break each kind of file in a scratch copy and check that the
#                   validators reject it (a validator that can't fail proves nothing)
# Environment: JETVAULT_CACHE (tools; default ~/.cache/jetvault), PYTHON (python3),
#   JETVAULT_K8S_VERSIONS ("1.29.0 1.37.0"), JETVAULT_MAX_EXPOSURE (1.5, on
#   systemd-analyze security's scale of 0 to 10).
# Tools: a venv from PyPI (deploy/validate-requirements.txt) and Debian's systemd.
# Exit status: 0 when every file is valid, 1 when one is not, 2 on a usage error.

# shellcheck disable=SC2317 # the check_* functions are called indirectly, as check_$kind
set -euo pipefail
shopt -s nullglob

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${JETVAULT_CACHE:-$HOME/.cache/jetvault}
K8S_VERSIONS=${JETVAULT_K8S_VERSIONS:-1.29.0 1.37.0}
MAX_EXPOSURE=${JETVAULT_MAX_EXPOSURE:-1.5}
SELF_TEST=0
BIN=${JETVAULT_BIN:-}

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

while (($#)); do
  case $1 in
    --self-test) SELF_TEST=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "validate.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) BIN=$1 ;;
  esac
  shift
done

START=$SECONDS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jetvault-validate.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ------------------------------------------------------------------ tools

find_binary() {
  if [[ -z $BIN ]]; then
    local target=${CARGO_TARGET_DIR:-$ROOT/target}
    for candidate in "$target/debug/jetvault" "$target/release/jetvault"; do
      if [[ -x $candidate ]]; then BIN=$candidate; break; fi
    done
  fi
  if [[ -z $BIN || ! -x $BIN ]]; then
    echo "validate.sh: no jetvault binary${BIN:+ at $BIN}: build it (cargo build --bin jetvault)" \
      "and pass its path as the argument or in JETVAULT_BIN" >&2
    exit 2
  fi
  BIN=$(realpath "$BIN")
}

setup_tools() {
  local py=${PYTHON:-python3} req=$ROOT/deploy/validate-requirements.txt key
  key=$({ cat "$req"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16)
  VENV=$CACHE/deploy-validate-$key
  if [[ ! -f $VENV/.ready ]]; then
    echo "installing the validators into $VENV (once)"
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    "$py" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    touch "$VENV/.ready"
  fi
  if ! command -v systemd-analyze >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
      echo "installing Debian's systemd for systemd-analyze"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
    else
      echo "validate.sh: systemd-analyze not found: install Debian's systemd package" >&2
      exit 2
    fi
  fi
}

py() { "$VENV/bin/python" "$ROOT/deploy/check_refs.py" "$@"; }

# Runs a command; it passes when it exits 0 and, with --silent, prints nothing.
# Output goes to stdout prefixed, so a failure shows why.
run() {
  local silent=0
  if [[ $1 == --silent ]]; then silent=1; shift; fi
  local out=$TMP/run.out rc=0
  "$@" >"$out" 2>&1 || rc=$?
  if ((rc != 0)) || { ((silent)) && [[ -s $out ]]; }; then
    sed 's/^/    | /' "$out"
    ((rc != 0)) || echo "    | (output above counts as a failure)"
    return 1
  fi
}

# ----------------------------------------------------------------- checks
# Each takes the tree to check (the repository, or a scratch copy in --self-test) and
# returns non-zero on any problem. errexit is off inside them (they run under `if`),
# so every step adds to `rc` explicitly.

check_configs() {
  local r=$1 rc=0 files=() out=$TMP/configs
  mkdir -p "$out" && rm -f "$out"/*
  files+=("$r"/examples/*.toml "$r"/examples/platforms/*.toml "$r"/localstack/*.toml)
  while IFS= read -r f; do files+=("$f"); done < <(find "$r/deploy" -name '*.toml' | sort)
  if [[ -d $r/deploy/kubernetes ]]; then
    while IFS= read -r f; do files+=("$f"); done < <(py extract-toml "$r/deploy/kubernetes" "$out")
  fi
  echo "  jetvault config check: ${#files[@]} files"
  run env -u JETVAULT_CONFIG -u JETVAULT_STORE "$BIN" config check "${files[@]}" || rc=1
  return "$rc"
}

check_kubernetes() {
  local r=$1 d=$1/deploy/kubernetes rc=0 manifests=() v
  for f in "$d"/*.yaml; do [[ $(basename "$f") == kustomization.yaml ]] || manifests+=("$f"); done
  echo "  yamllint: $d"
  run "$VENV/bin/yamllint" -c "$r/deploy/yamllint.yaml" -f parsable "$d" || rc=1
  for v in $K8S_VERSIONS; do
    echo "  kubernetes-validate --strict -k $v: ${#manifests[@]} files"
    run --silent "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}" || rc=1
  done
  echo "  cross-references: kustomization, names, labels, ports, mounts, token files"
  run py kubernetes "$d" || rc=1
  return "$rc"
}

check_systemd() {
  local r=$1 d=$1/deploy/systemd rc=0 copy=$TMP/systemd units=() threshold
  # systemd-analyze takes the threshold in tenths.
  threshold=$(awk -v x="$MAX_EXPOSURE" 'BEGIN { printf "%d", x * 10 + 0.5 }')
  rm -rf "$copy" && mkdir -p "$copy/root"
  # verify needs ExecStart's binary to exist: check copies that run the built one.
  for f in "$d"/*.service "$d"/*.timer; do
    sed "s#/usr/local/bin/jetvault#$BIN#g" "$f" >"$copy/$(basename "$f")"
    units+=("./$(basename "$f")")
  done
  echo "  systemd-analyze verify: ${units[*]}"
  (cd "$copy" && run --silent systemd-analyze verify --man=no --recursive-errors=no "${units[@]}") || rc=1
  for u in "$copy"/*.service; do
    echo "  systemd-analyze security --threshold=$MAX_EXPOSURE: $(basename "$u")"
    (cd "$copy" && run systemd-analyze security --offline=yes --threshold="$threshold" "./$(basename "$u")") || {
      rc=1
      echo "    | exposure over $MAX_EXPOSURE: restore the hardening, or raise JETVAULT_MAX_EXPOSURE knowingly"
    }
  done
  for f in "$d"/*.sysusers.conf; do
    echo "  systemd-sysusers --dry-run: $(basename "$f")"
    run systemd-sysusers --root="$copy/root" --dry-run "$(realpath "$f")" || rc=1
  done
  for f in "$d"/*.env; do
    echo "  environment file: $(basename "$f")"
    run py envfile "$f" || rc=1
  done
  return "$rc"
}

check_compose() {
  local r=$1 rc=0 files=("$1/deploy/docker-compose.yml")
  files+=("$r"/localstack/docker-compose.y*ml "$r"/localstack/compose.y*ml)
  for f in "${files[@]}"; do
    echo "  yamllint + compose-spec schema: ${f#"$r"/}"
    run "$VENV/bin/yamllint" -c "$r/deploy/yamllint.yaml" -f parsable "$f" || rc=1
    run "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$f" || rc=1
    if [[ $f == "$r/deploy/docker-compose.yml" ]]; then
      run py compose "$f" "$r/deploy/compose/jetvault.toml" || rc=1
    else
      run py compose "$f" || rc=1
    fi
    # The Compose CLI itself, where it is installed (it needs no engine for `config`).
    if docker compose version >/dev/null 2>&1; then
      echo "  docker compose config: ${f#"$r"/}"
      run docker compose -f "$f" config --quiet || rc=1
    fi
  done
  return "$rc"
}

check_dockerfile() {
  local r=$1 rc=0 f
  for f in "$r"/deploy/Dockerfile*; do
    echo "  hadolint + BuildKit parser + image rules: ${f#"$r"/}"
    run "$VENV/bin/hadolint" --no-color "$f" || rc=1
    run py dockerfile "$f" "$r" || rc=1
  done
  return "$rc"
}

KINDS=(configs kubernetes systemd compose dockerfile)

validate_tree() {
  local r=$1 failed=0 kind
  for kind in "${KINDS[@]}"; do
    echo "$kind"
    if "check_$kind" "$r"; then echo "ok   $kind"; else echo "FAIL $kind"; failed=$((failed + 1)); fi
  done
  return $failed
}

# The checker of the binary itself: a config with an unknown key must be refused,
# naming the key and the file (issue 5's "done when").
check_binary_refuses() {
  local bad=$TMP/unknown-key.toml out=$TMP/unknown-key.out
  printf 'store = "file:///tmp/x"\n[server]\nlisten_adress = "127.0.0.1:1"\n' >"$bad"
  if env -u JETVAULT_CONFIG "$BIN" config check "$bad" >"$out" 2>&1; then
    echo "FAIL $BIN config check accepts an unknown key"; return 1
  fi
  if ! grep -q listen_adress "$out" || ! grep -q unknown-key.toml "$out"; then
    echo "FAIL $BIN config check does not name the unknown key and the file:"; sed 's/^/    | /' "$out"; return 1
  fi
  echo "ok   the binary refuses an unknown key, naming it and the file"
}

# ------------------------------------------------------------- self-test

# mutate NAME KIND FILE SED-SCRIPT: break FILE in a scratch copy; KIND's check must fail.
SELF_FAILED=0
mutate() {
  local name=$1 kind=$2 file=$3 script=$4 copy=$TMP/self-test log=$TMP/self-test.log
  rm -rf "$copy" && mkdir -p "$copy"
  for p in deploy examples localstack .dockerignore; do
    if [[ -e $ROOT/$p ]]; then cp -a "$ROOT/$p" "$copy/"; fi
  done
  for p in Cargo.toml Cargo.lock build.rs src; do ln -s "$ROOT/$p" "$copy/$p"; done
  sed -i -e "$script" "$copy/$file"
  if cmp -s "$ROOT/$file" "$copy/$file"; then
    echo "FAIL self-test $name: the mutation did not change $file (update it)"
    SELF_FAILED=$((SELF_FAILED + 1)); return
  fi
  if "check_$kind" "$copy" >"$log" 2>&1; then
    echo "FAIL self-test $name: $kind still passes with $file broken"
    SELF_FAILED=$((SELF_FAILED + 1))
  else
    # The last line of the failing output that isn't a pass is the most specific.
    echo "ok   self-test $name: rejected: $(grep '^    | ' "$log" | grep -v -e ': ok (' -e '(output above' \
      | tail -n1 | sed -e 's/^    | //' -e "s#$copy/##g" | cut -c1-160)"
  fi
}

self_test() {
  echo "self-test: each broken file must be rejected"
  mutate config-unknown-key configs deploy/compose/jetvault.toml 's/^pointer_ttl = /pointer_tll = /'
  mutate config-bad-cron configs deploy/kubernetes/configmap.yaml 's/schedule = "0 0 \* \* \* \*"/schedule = "0 0 25 * * *"/'
  mutate config-systemd-role configs deploy/systemd/jetvault.toml 's/^role = "read"/role = "reader"/'
  mutate k8s-schema-type kubernetes deploy/kubernetes/deployment.yaml 's/^  replicas: 2$/  replicas: two/'
  mutate k8s-schema-unknown-field kubernetes deploy/kubernetes/cronjob.yaml 's/concurrencyPolicy: Forbid/concurrencyPolicy: Forbid\n  concurrency: 1/'
  mutate k8s-unknown-kind kubernetes deploy/kubernetes/service.yaml 's/^kind: Service$/kind: Servic/'
  mutate k8s-duplicate-key kubernetes deploy/kubernetes/deployment.yaml 's/^  replicas: 2$/  replicas: 2\n  replicas: 3/'
  mutate k8s-selector kubernetes deploy/kubernetes/service.yaml 's/app.kubernetes.io\/component: server/app.kubernetes.io\/component: api/'
  mutate k8s-token-path kubernetes deploy/kubernetes/configmap.yaml 's#tokens/reader-token#tokens/readr-token#'
  mutate k8s-kustomization kubernetes deploy/kubernetes/kustomization.yaml 's/- service.yaml/- services.yaml/'
  mutate systemd-bad-value systemd deploy/systemd/jetvault.service 's/^ProtectSystem=strict$/ProtectSystem=strictly/'
  mutate systemd-unknown-key systemd deploy/systemd/jetvault-backup-all.timer 's/^OnCalendar=/OnCalender=/'
  mutate systemd-execstart systemd deploy/systemd/jetvault.service 's#^ExecStart=/usr/local/bin/jetvault serve#ExecStart=/usr/local/bin/jetvault-nope serve#'
  mutate systemd-hardening systemd deploy/systemd/jetvault.service '/^\(ProtectSystem\|ProtectHome\|PrivateUsers\|CapabilityBoundingSet\|SystemCallFilter\|RestrictAddressFamilies\|NoNewPrivileges\)=/d'
  mutate systemd-sysusers systemd deploy/systemd/jetvault.sysusers.conf 's/^u jetvault/x jetvault/'
  mutate compose-schema compose deploy/docker-compose.yml 's/condition: service_completed_successfully/condition: service_completed/'
  mutate compose-unknown-key compose deploy/docker-compose.yml 's/^    read_only: true$/    readonly: true/'
  mutate compose-missing-secret compose deploy/docker-compose.yml 's#file: ./compose/secrets/reader-token#file: ./compose/secrets/reader.token#'
  mutate compose-yaml compose deploy/docker-compose.yml 's/^services:$/services:\n  - oops/'
  mutate dockerfile-no-user dockerfile deploy/Dockerfile '/^USER /d'
  mutate dockerfile-root-user dockerfile deploy/Dockerfile 's/^USER .*/USER root/'
  mutate dockerfile-no-healthcheck dockerfile deploy/Dockerfile '/^HEALTHCHECK /,/^    CMD /d'
  mutate dockerfile-instruction dockerfile deploy/Dockerfile 's/^EXPOSE 8080$/EXPSE 8080/'
  mutate dockerfile-lint dockerfile deploy/Dockerfile 's/^WORKDIR \/var\/lib\/jetvault$/WORKDIR var\/lib\/jetvault/'
  mutate dockerignore-src dockerfile .dockerignore 's#^!src/$#src/#'
}

# ------------------------------------------------------------------- main

find_binary
setup_tools
echo "validating $ROOT with $BIN ($("$BIN" --version))"
status=0
check_binary_refuses || status=1
validate_tree "$ROOT" || status=1
if ((SELF_TEST)); then
  self_test
  ((SELF_FAILED == 0)) || status=1
fi
elapsed=$((SECONDS - START))
if ((status == 0)); then
  echo "deploy/validate.sh: every file is valid (${elapsed}s)"
else
  echo "deploy/validate.sh: INVALID FILES, see FAIL above (${elapsed}s)"
fi
exit $status
