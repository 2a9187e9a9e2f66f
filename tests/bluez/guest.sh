#!/bin/sh
# Guest side of the BlueZ VM test (run as root by virtme-ng): kernel VHCI, D-Bus,
# bluetoothd and btmon, then guest_run.py, which writes $ANYECG_BLUEZ_OUT/result.json;
# logs (bluetoothd.log, hci.btsnoop, dmesg.log) go there too.
set -eu
cd "$(dirname "$0")/../.."
OUT="${ANYECG_BLUEZ_OUT:?}"
log() { echo "[guest $(cut -d' ' -f1 /proc/uptime)s] $*"; }
log "script started"
modprobe hci_vhci
mkdir -p /run/dbus
dbus-daemon --system --fork
/usr/libexec/bluetooth/bluetoothd -n -d >"$OUT/bluetoothd.log" 2>&1 &
btmon -w "$OUT/hci.btsnoop" >/dev/null 2>&1 &
log "hci_vhci, dbus-daemon, bluetoothd and btmon started"
status=0
.venv/bin/python tests/bluez/guest_run.py "$OUT/result.json" || status=$?
log "guest_run.py exited with $status"
dmesg >"$OUT/dmesg.log"
exit "$status"
