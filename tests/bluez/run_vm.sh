#!/bin/sh
# Host side of the BlueZ VM test: installs what it needs (root, Debian), boots a virtme-ng
# QEMU guest (TCG: software emulation, since nested KVM is not assumed) with the host's
# root file system, and runs tests/bluez/guest.sh inside it. Results land in $OUT.
set -eu
cd "$(dirname "$0")/../.."
OUT="${ANYECG_BLUEZ_OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
if [ "$(id -u)" = 0 ] && ! command -v qemu-system-x86_64 >/dev/null 2>&1 || [ ! -x /usr/libexec/bluetooth/bluetoothd ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 linux-image-amd64 bluez dbus >/dev/null
fi
.venv/bin/python -m pip install -q virtme-ng
KERNEL="$(ls /boot/vmlinuz-* | sort -V | tail -1)"
PATH="$PWD/.venv/bin:$PATH" ANYECG_BLUEZ_OUT="$OUT" vng --disable-kvm --disable-microvm --run "$KERNEL" \
  --memory 2G --cpus 2 --rwdir "$OUT" --rwdir /tmp \
  --exec "env ANYECG_BLUEZ_OUT=$OUT sh $PWD/tests/bluez/guest.sh" </dev/null
cat "$OUT/result.json"
