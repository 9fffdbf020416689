#!/usr/bin/env bash
# Builds the root filesystem of the notebook server our users run — stock JupyterLab 4 on
# Jupyter Server 2.x, from Debian 13 (trixie) — into the cache, once. devnode runs the quick
# start's notebook image from it (`make up`), and the tests run JupyterLab 4 and Jupyter
# Server 2.15 from it. Nothing of trixie is installed on the host.
#
#   hack/rootfs.sh          build the rootfs when it is missing (a few minutes the first time)
#   hack/rootfs.sh --path   print its path
#
# The rootfs lands in $ELASTIC_JUPYTER_CACHE/rootfs/jupyterlab-trixie (default cache
# ~/.cache/elastic-jupyter). Needs root: debootstrap and chroot do.
set -euo pipefail

SUITE=trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump when the package list changes: the cached rootfs is rebuilt.
ROOTFS_VERSION="$SUITE-3"
# debootstrap lays down a minimal trixie; apt inside it installs the rest (debootstrap's own
# resolver does not follow virtual packages such as python3-cffi-backend-api-min).
# jupyter-core gives the `jupyter` command (`jupyter lab`); numpy and dill are what kernels that
# keep their state across a suspension use.
PACKAGES=(python3-jupyter-server python3-ipykernel python3-jupyter-client jupyterlab jupyter-core python3-numpy python3-dill)

CACHE=${ELASTIC_JUPYTER_CACHE:-$HOME/.cache/elastic-jupyter}
DIR=$CACHE/rootfs/jupyterlab-$SUITE

log() { printf 'rootfs: %s\n' "$*" >&2; }
die() { printf 'rootfs: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ ${1:-} == --path ]]; then
  echo "$DIR"
  exit 0
fi

# One build at a time: the tests of several packages may ask for the rootfs at once.
mkdir -p "$CACHE/rootfs"
exec 9>"$CACHE/rootfs/.lock"
flock 9

if [[ -f $DIR/.elastic-jupyter-rootfs && "$(cat "$DIR/.elastic-jupyter-rootfs")" == "$ROOTFS_VERSION" ]]; then
  log "JupyterLab 4 rootfs present: $DIR"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || die "building the JupyterLab rootfs needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is missing: run hack/deps.sh (make deps)"

start=$SECONDS
TMP=$DIR.tmp
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

# An older rootfs is brought up to date in place: only the package install runs again.
if [[ -d $DIR && ! -d $TMP ]]; then
  log "updating the rootfs in $DIR from version $(cat "$DIR/.elastic-jupyter-rootfs" 2>/dev/null || echo unknown) to $ROOTFS_VERSION ..."
  mv "$DIR" "$TMP"
  touch "$TMP/.debootstrap-done"
fi
if [[ ! -f $TMP/.debootstrap-done ]]; then
  rm -rf "$TMP"
  mkdir -p "$TMP"
  log "debootstrap $SUITE into $TMP (a few minutes) ..."
  debootstrap --variant=minbase "$SUITE" "$TMP" "$MIRROR" >"$CACHE/rootfs/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $CACHE/rootfs/debootstrap.log"
  touch "$TMP/.debootstrap-done"
fi

mount --bind /proc "$TMP/proc" && mounted+=("$TMP/proc")
mount --bind /dev "$TMP/dev" && mounted+=("$TMP/dev")
cp /etc/resolv.conf "$TMP/etc/resolv.conf"
inchroot() { chroot "$TMP" env DEBIAN_FRONTEND=noninteractive HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
log "installing ${PACKAGES[*]} in the rootfs ..."
inchroot apt-get update -q >"$CACHE/rootfs/apt.log" 2>&1 || die "apt-get update in the rootfs failed; see $CACHE/rootfs/apt.log"
# The first install may stop on unmet dependencies; 'apt-get -f install' then the same install works.
if ! inchroot apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$CACHE/rootfs/apt.log" 2>&1; then
  inchroot apt-get -f install -y -q >>"$CACHE/rootfs/apt.log" 2>&1 || true
  inchroot apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >>"$CACHE/rootfs/apt.log" 2>&1 ||
    die "installing ${PACKAGES[*]} in the rootfs failed; see $CACHE/rootfs/apt.log"
fi
inchroot apt-get clean >/dev/null 2>&1 || true
# The stock Jupyter images' user: uid 1000 in group users (100), home /home/jovyan.
if ! inchroot id -u jovyan >/dev/null 2>&1; then
  inchroot useradd --uid 1000 --gid 100 --create-home --home-dir /home/jovyan --shell /bin/bash jovyan ||
    die "adding the jovyan user to the rootfs failed"
fi
inchroot python3 -c 'import jupyterlab, jupyter_server; print("jupyterlab", jupyterlab.__version__, "jupyter_server", jupyter_server.__version__)' >&2 ||
  die "JupyterLab does not import in the rootfs"
cleanup
mounted=()
rm -f "$TMP/.debootstrap-done"
echo "$ROOTFS_VERSION" >"$TMP/.elastic-jupyter-rootfs"
rm -rf "$DIR"
mv "$TMP" "$DIR"
log "built the JupyterLab 4 rootfs in $((SECONDS - start))s: $DIR"
