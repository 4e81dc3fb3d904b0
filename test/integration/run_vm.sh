#!/usr/bin/env bash
# Cross-hypervisor views and `livemount run` with the small sample guests:
#   - views: a KVM copy's raw view is its qcow2 decoded, its VMDK descriptor reads the same
#     under qemu-img; a VMware copy's raw view is its flat extent; the generated libvirt domain
#     passes libvirt's schema; views carry user.livemount.view, which nobody can change;
#   - writes through a view go to its own overlay, survive a remount, leave the backup as it
#     was; reads through a view are traced as reads of the image file (profiles match);
#   - run --hypervisor qemu: boots, writes; started again finds its write; --stop --discard
#     drops it; a second run of a running VM is refused;
#   - run --hypervisor libvirt: a VMware copy boots through its raw view; a VM with a NIC gets
#     a new MAC and the isolated network;
#   - run --hypervisor esxi prints the registration commands; bad arguments are one line.
LM=$1
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"
chmod 755 "$WORK"  # libvirt's QEMU must reach the mountpoint

"$SRC/tools/make-sample-vm.sh" kvm --flavour kvm --name guest >/dev/null
"$SRC/tools/make-sample-vm.sh" vmw --flavour vmware --name vguest >/dev/null
# The KVM guest gets a NIC on the production network, which a recovery must not join.
sed -i "s|    <serial type='pty'/>|    <interface type='network'><source network='default'/><mac address='52:54:00:aa:bb:cc'/><model type='virtio'/></interface>\n&|" kvm/guest.xml
grep -q "52:54:00:aa:bb:cc" kvm/guest.xml || fail "could not add a NIC to the sample"
$LM init repo --encryption none >/dev/null 2>&1
$LM backup repo kvm --vm guest >/dev/null
$LM backup repo vmw --vm vguest >/dev/null
mount_repo repo mnt --allow-other
K=mnt/guest/latest W=mnt/vguest/latest

note "views: decoded, byte for byte"
qemu-img convert -f qcow2 -O raw kvm/guest.qcow2 guest.raw
cmp "$K/guest.raw" guest.raw || fail "the raw view of the qcow2 differs from qemu-img's"
qemu-img compare -q -f vmdk -F qcow2 "$K/guest.vmdk" kvm/guest.qcow2 || fail "the VMDK descriptor does not read as the qcow2"
cmp "$W/vguest.raw" vmw/vguest-flat.vmdk || fail "the raw view of the flat VMDK differs"
grep -q 'fileName = "guest.vmdk"' "$K/guest.vmx" || fail "the generated .vmx does not name the descriptor"
virt-xml-validate "$W/vguest.livemount.xml" >/dev/null 2>&1 || fail "the generated domain does not validate"
grep -q "<source file='$WORK/mnt/vguest/[0-9TZ]*/vguest.raw'/>" "$W/vguest.livemount.xml" || fail "the domain does not name the raw view"
[ "$(getfattr --only-values -n user.livemount.view "$K/guest.raw")" = guest.qcow2 ] || fail "no view attribute"
getfattr -n user.livemount.view "$K/guest.qcow2" >/dev/null 2>&1 && fail "a backed-up file is marked as a view"
setfattr -n user.livemount.view -v x "$K/guest.qcow2" 2>/dev/null && fail "user.livemount.view could be set"
[ "$(ls "$K")" = "$(printf 'guest.qcow2\nguest.raw\nguest.vmdk\nguest.vmx\nguest.xml')" ] || { ls "$K"; fail "unexpected files"; }

note "a write through a view goes to its overlay and survives a remount"
printf 'VIEW-WRITE' | dd of="$K/guest.raw" bs=1 seek=5000000 conv=notrunc status=none
[ "$(dd if="$K/guest.raw" bs=1 skip=5000000 count=10 status=none)" = VIEW-WRITE ] || fail "read-your-writes"
$LM umount mnt >/dev/null
mount_repo repo mnt --allow-other
[ "$(dd if="$K/guest.raw" bs=1 skip=5000000 count=10 status=none)" = VIEW-WRITE ] || fail "the view's write is gone after a remount"
cmp "$K/guest.qcow2" kvm/guest.qcow2 || fail "the image behind the view changed"
$LM verify repo --read-data >/dev/null || fail "the repository changed"
# Reads through the view are traced as the image's (a profile learned either way is the same).
$LM umount mnt >/dev/null
python3 - state/traces/guest/*.json <<'PY' || fail "reads through the view were not traced as the image's"
import json, sys
files = {t[0] for f in sys.argv[1:] for t in json.load(open(f))["touches"]}
# The image the view decodes, and the domain XML the mount read to make the .vmx view.
assert "guest.qcow2" in files and not files - {"guest.qcow2", "guest.xml"}, files
PY
mount_repo repo mnt --allow-other
$LM discard mnt guest@latest >/dev/null

note "run --hypervisor qemu: boot, write, stop, start again"
RUN=($LM run repo --mount "$WORK/mnt")
wait_log() {  # wait_log FILE LINE: the guest printed LINE (and powered off)
  for _ in $(seq 600); do grep -aq "LIVEMOUNT-GUEST: powering off" "$1" 2>/dev/null && break; sleep 0.1; done
  grep -aq "$2" "$1" || { cat "$1"; fail "expected '$2'"; }
}
"${RUN[@]}" guest --hypervisor qemu --prestage >run.out || { cat run.out; fail "run --hypervisor qemu"; }
cleanup_hooks+=("$LM run --stop guest-livemount >/dev/null 2>&1")
LOG=$(sed -n 's/^  serial log: //p' run.out)
[ -n "$LOG" ] || { cat run.out; fail "run printed no serial log"; }
grep -q "pre-staging guest@" run.out || fail "no pre-staging"
expect_fail "is running" "${RUN[@]}" guest --hypervisor qemu
wait_log "$LOG" "(boot 1)"
grep -q "guest-livemount .*qemu" <($LM run --list) || fail "run --list"
"${RUN[@]}" guest --hypervisor qemu >/dev/null || fail "run again"
wait_log "$LOG" "(boot 2)"
$LM run --stop guest-livemount --discard | grep -q "discarded the overlay" || fail "run --stop --discard"
"${RUN[@]}" guest --hypervisor qemu >/dev/null || fail "run after discard"
wait_log "$LOG" "(boot 1)"
$LM run --stop guest-livemount >/dev/null

note "run --hypervisor libvirt: the VMware copy through its raw view; a NIC on the isolated network"
start_libvirt
virsh -q -c qemu:///system net-info livemount-isolated >/dev/null 2>&1 ||
  cleanup_hooks+=("virsh -q -c qemu:///system net-destroy livemount-isolated >/dev/null 2>&1; virsh -q -c qemu:///system net-undefine livemount-isolated >/dev/null 2>&1")
"${RUN[@]}" vguest --name vguest-rec >run.out || { cat run.out; fail "run --hypervisor libvirt (VMware copy)"; }
cleanup_hooks+=("$LM run --stop vguest-rec >/dev/null 2>&1")
wait_domain_off vguest-rec 300
wait_log "$WORK/state/runs/vguest-rec.serial.log" "(boot 1)"
virsh -q -c qemu:///system dumpxml vguest-rec | grep -q "vguest.raw'" || fail "not booted from the raw view"
$LM run --stop vguest-rec >/dev/null
"${RUN[@]}" guest --name guest-rec >run.out || { cat run.out; fail "run --hypervisor libvirt (KVM copy)"; }
cleanup_hooks+=("$LM run --stop guest-rec >/dev/null 2>&1")
virsh -q -c qemu:///system dumpxml guest-rec >dom.xml
grep -q "<source network='livemount-isolated'" dom.xml || fail "the NIC is not on the isolated network"
grep -q "52:54:00:aa:bb:cc" dom.xml && fail "the recovered VM kept the original's MAC address"
wait_domain_off guest-rec 300
$LM run --stop guest-rec >/dev/null

note "ESXi: the commands"
"${RUN[@]}" guest --hypervisor esxi --nfs-host 192.0.2.7 >esxi.out || fail "run --hypervisor esxi"
grep -q "esxcli storage nfs add --host=192.0.2.7" esxi.out || fail "no NFS datastore command"
grep -q "vim-cmd solo/registervm '/vmfs/volumes/livemount/guest/[0-9TZ]*/guest.vmx' 'guest-livemount'" esxi.out ||
  { cat esxi.out; fail "no registervm of the generated .vmx"; }

note "bad arguments: one line each"
expect_fail "has no VM named nosuch" "${RUN[@]}" nosuch --hypervisor qemu
expect_fail "invalid VM name" "${RUN[@]}" guest --name "../x" --hypervisor qemu
expect_fail "--hypervisor must be" "${RUN[@]}" guest --hypervisor xen
expect_fail "--discard goes with --stop" $LM run --discard
expect_fail "no VM named ghost" $LM run --stop ghost
$LM umount mnt >/dev/null
check_log
echo "PASS"
