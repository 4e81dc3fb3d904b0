#!/usr/bin/env bash
# Boots a sample VM's disk (qcow2 or VMDK) in QEMU under TCG, with the serial console on
# stdout, and fails unless the guest verified its data and powered off.
#   tools/boot-sample-vm.sh DISK [extra qemu options, e.g. -snapshot]
# DISK may be a path or a QEMU URL (nfs://...); BOOT_FORMAT overrides the format.
set -euo pipefail
DISK=${1:?usage: boot-sample-vm.sh DISK [qemu options...]}
shift
case "$DISK" in
  *.qcow2) FMT=qcow2 ;;
  *.vmdk) FMT=vmdk ;;
  *) FMT=raw ;;
esac
FMT=${BOOT_FORMAT:-$FMT}  # e.g. raw for a VMDK's -flat extent
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
rc=0
timeout "${BOOT_TIMEOUT:-180}" qemu-system-x86_64 -machine accel=tcg -m 256 -nographic \
  -no-reboot -nodefaults -serial stdio -drive "file=$DISK,format=$FMT,if=virtio,cache=writeback" \
  "$@" </dev/null | tee "$LOG" | grep --line-buffered -o "LIVEMOUNT-GUEST:.*" || rc=$?
grep -q "LIVEMOUNT-GUEST: data ok" "$LOG" || { echo "boot-sample-vm: the guest did not verify its data" >&2; tail -20 "$LOG" >&2; exit 1; }
grep -q "LIVEMOUNT-GUEST: powering off" "$LOG" || { echo "boot-sample-vm: the guest did not finish" >&2; exit 1; }
