#!/usr/bin/env bash
# Fails when a generated file differs from what the generators make now: the deepcopy
# functions, the CRDs in crds/, the chart's copies of the CRDs (charts/elastic-jupyter/charts/crds/files), and the controller's RBAC in
# config/rbac/. Changes nothing in the tree it checks, which is $1 (default: this repository).
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/elastic-jupyter-verify.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cp -r "$root/go.mod" "$root/go.sum" "$root/api" "$root/hack" "$root/controller" "$root/internal" "$tmp/"
mkdir "$tmp/crds"
"$root/hack/generate.sh" "$tmp"

status=0
if ! diff -ru "$root/crds" "$tmp/crds"; then
  echo "verify: crds/ is out of date or was edited by hand: run 'make manifests'" >&2
  status=1
fi
if ! diff -ru "$root/api" "$tmp/api"; then
  echo "verify: generated code in api/ is out of date or was edited by hand: run 'make manifests'" >&2
  status=1
fi
if ! diff -ru "$root/config/rbac" "$tmp/config/rbac"; then
  echo "verify: config/rbac/ is out of date or was edited by hand: run 'make manifests'" >&2
  status=1
fi
chart_crds=$root/charts/elastic-jupyter/charts/crds/files
if [[ -d $chart_crds ]]; then
  if ! diff -r -q "$root/crds" "$chart_crds" >/dev/null; then
    diff -ru "$root/crds" "$chart_crds" | head -40 || true
    echo "verify: $chart_crds differs from crds/: run 'make manifests'" >&2
    status=1
  fi
fi
[[ $status -eq 0 ]] && echo "verify: generated files are up to date"
exit $status
