#!/usr/bin/env bash
# Generates the deepcopy functions of api/, the CRD manifests in crds/ and the controller's
# ClusterRole in config/rbac/ (from the RBAC markers of controller/) with controller-gen, in the
# module rooted at $1 (default: this repository).
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cache=${ELASTIC_JUPYTER_CACHE:-$HOME/.cache/elastic-jupyter}
cg=$cache/bin/controller-gen
[[ -x $cg ]] || { echo "generate: controller-gen missing in $cache/bin: run 'make tools'" >&2; exit 1; }
cd "$root"
"$cg" object:headerFile=hack/boilerplate.go.txt paths=./api/...
# generateEmbeddedObjectMeta keeps the labels and annotations of embedded pod templates
# through the API server's pruning.
rm -f crds/*.yaml
"$cg" crd:generateEmbeddedObjectMeta=true output:crd:artifacts:config=crds paths=./api/...
# The controller's RBAC, from the +kubebuilder:rbac markers in controller/.
mkdir -p config/rbac
rm -f config/rbac/role.yaml
"$cg" rbac:roleName=elastic-jupyter-controller output:rbac:artifacts:config=config/rbac paths=./controller/...
# The chart's copies of the CRDs (charts/elastic-jupyter/charts/crds renders them from files/).
chart_crds=charts/elastic-jupyter/charts/crds/files
if [[ -d $(dirname "$chart_crds") ]]; then
  mkdir -p "$chart_crds"
  rm -f "$chart_crds"/*.yaml
  cp crds/*.yaml "$chart_crds/"
fi
