#!/usr/bin/env bash
# Boots a sample VM's disks (qcow2 or VMDK) in QEMU under TCG, with the serial console on
# stdout, and fails unless the guest verified its data and powered off.
#   tools/boot-sample-vm.sh DISK [DISK...] [extra qemu options, e.g. -snapshot]
# The first disk is the one booted (the Debian guest's second one is its data disk). A disk
# may be a path or a QEMU URL (nfs://...); BOOT_FORMAT overrides the format of all.
# BOOT_MEMORY (MiB, default 512) and BOOT_TIMEOUT (seconds, default 300) tune the run.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: boot-sample-vm.sh DISK [DISK...] [qemu options...]" >&2; exit 2; }
DRIVES=()
while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
  case "$1" in
    *.qcow2) FMT=qcow2 ;;
    *.vmdk) FMT=vmdk ;;
    *) FMT=raw ;;
  esac
  FMT=${BOOT_FORMAT:-$FMT}  # e.g. raw for a VMDK's -flat extent
  DRIVES+=(-drive "file=$1,format=$FMT,if=virtio,cache=writeback")
  shift
done
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
rc=0
timeout "${BOOT_TIMEOUT:-300}" qemu-system-x86_64 -machine accel=tcg -m "${BOOT_MEMORY:-512}" -nographic \
  -no-reboot -nodefaults -serial stdio "${DRIVES[@]}" \
  "$@" </dev/null | tee "$LOG" | grep --line-buffered -a -o "LIVEMOUNT-GUEST:.*" || rc=$?
grep -q "LIVEMOUNT-GUEST: data ok" "$LOG" || { echo "boot-sample-vm: the guest did not verify its data" >&2; tail -20 "$LOG" >&2; exit 1; }
grep -q "LIVEMOUNT-GUEST: powering off" "$LOG" || { echo "boot-sample-vm: the guest did not finish" >&2; exit 1; }
