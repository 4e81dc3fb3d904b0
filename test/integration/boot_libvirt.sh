#!/usr/bin/env bash
# End to end with Debian's libvirt in its default configuration (remember_owner = 1, which
# stores trusted.libvirt.security.* attributes on every disk it starts and chowns the disk
# to libvirt-qemu): the sample VM is defined and started by libvirt from the live mount
# (--allow-other), boots, writes, powers off; started again after a remount, it finds its
# write. The test starts virtlogd and libvirtd itself and stops them, by pid, in every path.
LM=$1
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"
chmod 755 "$WORK"  # libvirt-qemu must reach the mountpoint

"$SRC/tools/make-sample-vm.sh" vms/kvm --flavour kvm --name guest >/dev/null
$LM init repo --encryption none >/dev/null
$LM backup repo vms/kvm --vm guest >/dev/null
mount_repo repo mnt --allow-other

start_libvirt
VIRSH=(virsh -q -c qemu:///system)
grep -qE '^\s*remember_owner\s*=\s*0' /etc/libvirt/qemu.conf && fail "qemu.conf is not the default (remember_owner = 0)"

DOM=livemount-test-$$
cat >dom.xml <<XML
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <on_reboot>destroy</on_reboot>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$WORK/mnt/guest/latest/guest.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'><source path='$WORK/serial.log'/></serial>
  </devices>
</domain>
XML
"${VIRSH[@]}" define dom.xml >/dev/null || fail "virsh define"
cleanup_hooks+=("virsh -q -c qemu:///system destroy $DOM >/dev/null 2>&1; virsh -q -c qemu:///system undefine $DOM >/dev/null 2>&1")

run_guest() {  # run_guest EXPECTED-LINE
  rm -f serial.log
  "${VIRSH[@]}" start "$DOM" >start.out 2>&1 || { cat start.out >&2; fail "virsh start failed"; }
  # libvirt recorded the owner on the disk (the call that failed before the overlay had xattrs).
  getfattr -m 'trusted.libvirt' -d mnt/guest/latest/guest.qcow2 2>/dev/null | grep -q trusted.libvirt.security ||
    fail "libvirt set no trusted.libvirt.security attribute on the disk"
  for _ in $(seq 1800); do
    state=$("${VIRSH[@]}" domstate "$DOM" 2>/dev/null || true)
    [ "$state" = "shut off" ] && break
    sleep 0.1
  done
  [ "$state" = "shut off" ] || { "${VIRSH[@]}" destroy "$DOM" >/dev/null 2>&1 || true; tail -20 serial.log >&2; fail "the guest did not power off"; }
  grep -q "LIVEMOUNT-GUEST: data ok" serial.log || { tail -20 serial.log >&2; fail "the guest did not verify its data"; }
  grep -q "LIVEMOUNT-GUEST: wrote /data/boot-log.txt ($1)" serial.log || { tail -5 serial.log >&2; fail "expected '$1'"; }
}

note "libvirt (default configuration) starts the sample VM from the live mount"
run_guest "boot 1"
[ "$(stat_of mnt 'j["writes"]["requests"]')" -gt 0 ] || fail "the guest wrote nothing"
$LM umount mnt >/dev/null
note "after a remount, the guest started by libvirt again finds its write"
mount_repo repo mnt --allow-other
run_guest "boot 2"
$LM umount mnt >/dev/null
check_log
$LM verify repo --read-data >/dev/null || fail "the repository changed"
echo "PASS"
