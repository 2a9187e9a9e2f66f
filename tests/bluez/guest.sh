#!/bin/sh
# Guest side of the BlueZ VM test (run as root by virtme-ng): kernel VHCI, D-Bus, bluetoothd, then the test.
set -eu
cd "$(dirname "$0")/../.."
OUT="${ANYECG_BLUEZ_OUT:-/tmp}"
modprobe hci_vhci
mkdir -p /run/dbus
dbus-daemon --system --fork
/usr/libexec/bluetooth/bluetoothd -n >"$OUT/bluetoothd.log" 2>&1 &
sleep 1
.venv/bin/python tests/bluez/guest_run.py >"$OUT/result.json" 2>"$OUT/guest_stderr.log"
echo "guest exit $?" >>"$OUT/result.json"
