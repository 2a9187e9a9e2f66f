#!/bin/sh
# Host side of the BlueZ VM test: installs what it needs (Debian packages as root, virtme-ng
# into the project venv), boots a virtme-ng QEMU guest under TCG (software emulation; nested
# KVM is not assumed) that shares the host root file system, and runs tests/bluez/guest.sh
# in it. Results land in $ANYECG_BLUEZ_OUT (result.json, vm.log, bluetoothd.log, hci.btsnoop, dmesg.log).
set -eu
cd "$(dirname "$0")/../.."
OUT="${ANYECG_BLUEZ_OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x /usr/libexec/bluetooth/bluetoothd ] \
   || ! command -v dbus-daemon >/dev/null || ! command -v modprobe >/dev/null \
   || ! ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || ! dpkg -s busybox-static >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "run_vm.sh: need root to apt-get install the VM packages" >&2; exit 2; }
  echo "installing qemu-system-x86 linux-image-amd64 bluez dbus kmod busybox-static"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 linux-image-amd64 bluez dbus kmod busybox-static >/dev/null
fi
[ -x .venv/bin/vng ] || .venv/bin/python -m pip install -q virtme-ng==1.42
KERNEL="$(ls /boot/vmlinuz-*-amd64 | sort -V | tail -1)"
echo "booting $KERNEL under TCG, output in $OUT"
PATH="$PWD/.venv/bin:$PATH" timeout -k 20 "${ANYECG_BLUEZ_TIMEOUT:-840}" \
  vng --disable-kvm --disable-microvm --run "$KERNEL" --memory 2G --cpus 2 --rwdir "$OUT" \
  --exec "env ANYECG_BLUEZ_OUT=$OUT sh $PWD/tests/bluez/guest.sh" </dev/null 2>&1 | tee "$OUT/vm.log"
echo "vng exited; result: $(cat "$OUT/result.json" 2>/dev/null || echo none)"
