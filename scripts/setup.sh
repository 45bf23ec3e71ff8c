#!/usr/bin/env bash
# Installs what kataref needs on a fresh Debian 12 (or Ubuntu) machine: Debian packages for QEMU,
# image tools and the guest build, then npm dependencies. Quiet and quick when all is present.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: QEMU and qemu-img, a static busybox for the guest initramfs, kmod (depmod/modprobe
# for the guest's module order), cpio, image tools (mkfs.erofs, veritysetup, sgdisk), decompressors.
PACKAGES=(qemu-system-x86 qemu-utils busybox-static kmod cpio erofs-utils cryptsetup-bin gdisk zstd xz-utils file)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" file >&2
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then echo "setup: Node.js >= 20 is required (found $(node --version))" >&2; exit 1; fi

# npm dependencies: install when missing or when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi
