#!/usr/bin/env bash
# Installs the Debian packages the tests and `make up` need, when missing: real ipykernels,
# Jupyter Server and the classic notebook (the stock client of the gateway), all under
# /usr/bin/python3, and chromium for the browser test. Needs root (or sudo) only when something is missing.
set -euo pipefail
# chromium is the real browser of the end-to-end test (driven by playwright-core, which
# hack/tools.sh installs with the machine's npm).
# python3-dill and python3-numpy: the kernel-state helper serializes with dill, and its tests
# snapshot numpy arrays.
# debootstrap builds the JupyterLab 4 root filesystem (hack/rootfs.sh) devnode runs the stock
# Jupyter image from.
# iproute2 and util-linux: devnode gives each pod a network namespace (ip, nsenter).
packages=(python3-ipykernel python3-jupyter-server python3-notebook python3-websocket python3-dill python3-numpy chromium debootstrap iproute2 util-linux)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: Debian packages present: ${packages[*]}"
  exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: need root to install ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "deps: installing ${missing[*]} with apt-get ..."
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q "${missing[@]}"
echo "deps: installed in $((SECONDS - start))s"
