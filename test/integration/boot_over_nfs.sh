#!/usr/bin/env bash
# End to end over NFS: the media agent exports its mount (nfs-ganesha) and QEMU boots the
# sample VM from nfs://127.0.0.1/... through its own NFS client (qemu-block-extra, libnfs),
# as a hypervisor with an NFS datastore would. The guest's writes land in the overlay: a
# second boot, straight from the FUSE mount after a remount, finds the file the first wrote.
LM=$1
source "$(dirname "$0")/lib.sh"
nfs_setup
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"
P=22049; MP=22048

"$SRC/tools/make-sample-vm.sh" vms/kvm --flavour kvm --name guest >/dev/null
"$SRC/tools/make-sample-vm.sh" vms/vmware --flavour vmware --name guest >/dev/null
$LM init repo --encryption none >/dev/null
$LM backup repo vms/kvm --vm guest-kvm >/dev/null
$LM backup repo vms/vmware --vm guest-vmware >/dev/null
mount_repo repo mnt --export --nfs-port $P --mount-port $MP
MNT=$WORK/mnt
KVM_ID=$(readlink mnt/guest-kvm/latest)
VMW_ID=$(readlink mnt/guest-vmware/latest)

boot() {  # boot DISK EXPECTED-LINE
  "$SRC/tools/boot-sample-vm.sh" "$1" | tee boot.out
  grep -q "LIVEMOUNT-GUEST: wrote /data/boot-log.txt ($2)" boot.out || fail "$1: expected '$2'"
}

note "QEMU boots both flavours over NFS, writable"
boot "nfs://127.0.0.1$MNT/guest-kvm/$KVM_ID/guest.qcow2" "boot 1"
# QEMU resolves a VMDK descriptor's extent wrongly under nfs:// URLs, so the VMware
# flavour boots from its -flat extent, the raw disk the descriptor points at (ESXi mounts
# the datastore and opens the descriptor itself).
BOOT_FORMAT=raw boot "nfs://127.0.0.1$MNT/guest-vmware/$VMW_ID/guest-flat.vmdk" "boot 1"
[ "$(stat_of mnt 'j["writes"]["requests"]')" -gt 0 ] || fail "no guest write reached the overlay"
[ "$(stat_of mnt 'j["reads"]["errors"]')" = 0 ] || fail "read errors during the boots"
$LM umount mnt >/dev/null

note "after a remount the guests find what they wrote over NFS"
mount_repo repo mnt
boot mnt/guest-kvm/latest/guest.qcow2 "boot 2"
boot mnt/guest-vmware/latest/guest.vmdk "boot 2"
$LM umount mnt >/dev/null
$LM verify repo --read-data >/dev/null || fail "the repository changed"
check_log
echo "boot_over_nfs: all checks passed"
