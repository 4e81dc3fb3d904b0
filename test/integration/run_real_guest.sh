#!/usr/bin/env bash
# `livemount run` end to end with the real Debian guest (long: about 8 minutes under TCG),
# from an encrypted repository:
#   - the KVM flavour is started by `run --hypervisor libvirt` (a media agent started by run
#     itself, pre-staging in the background), reaches its application-ready line and writes;
#     stopped and started again, it finds its write; `--stop --discard` then drops it;
#   - the VMware flavour boots on libvirt through the raw views of its VMDKs, on its own PVSCSI
#     controller (the domain made from its .vmx);
#   - the KVM flavour boots under QEMU from the VMDK descriptors the mount generates over the
#     raw views of its qcow2 images (format=vmdk), as ESXi reads them from the NFS export.
# The test starts virtlogd and libvirtd itself (unless this machine runs them) and stops
# them, the VMs and the media agent in every path.
LM=$1
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"
chmod 755 "$WORK"  # libvirt's QEMU (user libvirt-qemu) must reach the mountpoint
export LIVEMOUNT_DEBIAN_ROOTFS=$WORK/rootfs  # one mmdebstrap run for both flavours
echo "correct horse battery staple" >pw
export LIVEMOUNT_PASSWORD_FILE=$WORK/pw

note "make the Debian guest, both flavours, and back them up into an encrypted repository"
"$SRC/tools/make-sample-vm.sh" vm --distro debian --name deb --app-mib 32 --data-size 128M --seed r1 2>make.err ||
  { cat make.err; fail "make-sample-vm --distro debian"; }
"$SRC/tools/make-sample-vm.sh" vmw --distro debian --flavour vmware --name debw --app-mib 16 --data-size 96M \
  --seed r2 2>make.err || { cat make.err; fail "make-sample-vm --distro debian --flavour vmware"; }
$LM init repo >/dev/null
$LM key list repo >/dev/null || fail "the repository is not encrypted"
$LM backup repo vm --vm deb >/dev/null
$LM backup repo vmw --vm debw >/dev/null
start_libvirt
RUN=($LM run repo --mount "$WORK/mnt" --state-dir "$WORK/state" --cache-dir "$WORK/cache")
cleanup_hooks+=("force_unmount '$WORK/mnt'")  # the media agent run starts

# run_guest NAME SPEC EXPECTED-BOOT [run options]: started by run, the guest must reach its
# application-ready line and write boot EXPECTED-BOOT, then power off.
run_guest() {
  local name=$1 spec=$2 boot=$3; shift 3
  "${RUN[@]}" "$spec" --name "$name" "$@" >run.out 2>&1 || { cat run.out; fail "run $spec"; }
  cleanup_hooks+=("$LM run --stop $name --state-dir '$WORK/state' >/dev/null 2>&1")
  grep -q "console:    virsh -c qemu:///system console $name" run.out || { cat run.out; fail "run printed no console"; }
  wait_domain_off "$name" 600
  local log=state/runs/$name.serial.log
  grep -aq "LIVEMOUNT-GUEST: app ready" "$log" || { tail -30 "$log"; fail "$name: the application did not get ready"; }
  grep -aq "(boot $boot)" "$log" || { grep -a LIVEMOUNT "$log"; fail "$name: expected boot $boot"; }
}

note "run --hypervisor libvirt: the KVM flavour boots, writes, is stopped"
run_guest deb-rec deb 1 --hypervisor libvirt --prestage
grep -q "pre-staging deb@" run.out || fail "run did not pre-stage"
virsh -q -c qemu:///system dumpxml deb-rec >dom.xml
grep -q "$WORK/mnt/deb/.*/deb.qcow2" dom.xml || fail "the domain's disk is not on the mount"
grep -q "<name>deb-rec</name>" dom.xml || fail "the domain has not its new name"
$LM run --list --state-dir state | grep -q "deb-rec .*libvirt .*shut off" || fail "run --list"
$LM run --stop deb-rec --state-dir state >/dev/null || fail "run --stop"
virsh -q -c qemu:///system dominfo deb-rec >/dev/null 2>&1 && fail "run --stop left the domain defined"

note "started again, it finds its write; --stop --discard drops what it wrote"
run_guest deb-rec deb 2 --hypervisor libvirt
$LM run --stop deb-rec --discard --state-dir state >stop.out || fail "run --stop --discard"
grep -q "discarded the overlay of deb@" stop.out || fail "no discard"
[ ! -e state/runs/deb-rec.json ] || fail "the run record stayed"

note "the VMware flavour on libvirt, through the raw views of its VMDKs"
ls mnt/debw/latest/debw.raw mnt/debw/latest/debw_1.raw mnt/debw/latest/debw.livemount.xml >/dev/null || fail "no views"
run_guest debw-rec debw 1
virsh -q -c qemu:///system dumpxml debw-rec >domw.xml
grep -q "debw.raw'" domw.xml || fail "the VMware copy did not run from its raw view"
grep -q "model='vmpvscsi'" domw.xml || fail "the VMware copy lost its PVSCSI controller"
$LM run --stop debw-rec --state-dir state >/dev/null

note "the KVM flavour under QEMU from its generated VMDK descriptors (format=vmdk), as ESXi reads them"
qemu-img info mnt/deb/latest/deb.vmdk | grep -q "create type: monolithicFlat" || fail "deb.vmdk is not a flat descriptor"
# The views decode the backed-up images: what the guest wrote through deb.qcow2 (discarded
# above anyway) is not in deb.raw, and this boot's writes go to the raw view's own overlay.
"$SRC/tools/boot-sample-vm.sh" mnt/deb/latest/deb.vmdk mnt/deb/latest/deb-data.vmdk >vmdk.out 2>&1 ||
  { cat vmdk.out; fail "the guest did not boot from its VMDK descriptors"; }
grep -q "LIVEMOUNT-GUEST: app ready" vmdk.out || { cat vmdk.out; fail "no app ready from the VMDK descriptors"; }
grep -q "(boot 1)" vmdk.out || fail "the VMDK boot is not boot 1"

$LM umount mnt >/dev/null
check_log
echo "PASS"
