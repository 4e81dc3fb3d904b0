#!/usr/bin/env bash
# End to end: a real guest boots in QEMU (TCG) straight from the live mount, for both
# flavours: KVM (qcow2 + libvirt XML) and VMware (.vmx + monolithicFlat VMDK), with
# -snapshot (the mount is read-only). The guest verifies its data and powers off.
LM=$1
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"

"$SRC/tools/make-sample-vm.sh" vms/kvm --flavour kvm --name guest >/dev/null
"$SRC/tools/make-sample-vm.sh" vms/vmware --flavour vmware --name guest >/dev/null
$LM init repo >/dev/null
$LM backup repo vms/kvm --vm guest-kvm >/dev/null
$LM backup repo vms/vmware --vm guest-vmware >/dev/null
mount_repo repo mnt

note "boot the KVM flavour (qcow2) from the mount"
"$SRC/tools/boot-sample-vm.sh" mnt/guest-kvm/latest/guest.qcow2 -snapshot
note "boot the VMware flavour (VMDK descriptor + flat extent) from the mount"
"$SRC/tools/boot-sample-vm.sh" mnt/guest-vmware/latest/guest.vmdk -snapshot
[ "$(stat_of mnt 'j["reads"]["errors"]')" = 0 ] || fail "read errors during boot"
[ "$(stat_of mnt 'j["repo"]["chunks_fetched"]')" -gt 0 ] || fail "nothing was read from the repository"
$LM umount mnt >/dev/null
$LM verify repo --read-data >/dev/null || fail "the repository changed"
check_log
echo "boot_from_mount: all checks passed"
