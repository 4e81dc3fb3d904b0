#!/usr/bin/env bash
# End to end: a real guest boots in QEMU (TCG) straight from the live mount, for both
# flavours: KVM (qcow2 + libvirt XML) and VMware (.vmx + monolithicFlat VMDK). First with
# -snapshot, then writable (its writes land in the overlay): after a remount the guest
# finds the file it wrote at its previous boot; restored with its overlay (restore
# --with-overlay) it boots from local disk and finds it too, and a live copy becomes a new
# backup copy (backup --from-mount) that boots. The backup copy never changes. The
# repository is encrypted (the default): the media agent decrypts every chunk it serves.
LM=$1
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"

"$SRC/tools/make-sample-vm.sh" vms/kvm --flavour kvm --name guest >/dev/null
"$SRC/tools/make-sample-vm.sh" vms/vmware --flavour vmware --name guest >/dev/null
echo "boot test password" >password
export LIVEMOUNT_PASSWORD_FILE=$WORK/password
$LM init repo >/dev/null
grep -q '"cipher": "aes-256-gcm"' repo/config || fail "a new repository is not encrypted by default"
$LM backup repo vms/kvm --vm guest-kvm >/dev/null
$LM backup repo vms/vmware --vm guest-vmware >/dev/null
mount_repo repo mnt

boot() {  # boot DISK EXPECTED-LINE [qemu options]
  local disk=$1 want=$2; shift 2
  "$SRC/tools/boot-sample-vm.sh" "$disk" "$@" | tee boot.out
  grep -q "LIVEMOUNT-GUEST: wrote /data/boot-log.txt ($want)" boot.out || fail "$disk: expected '$want'"
}

note "boot the KVM flavour (qcow2) from the mount with -snapshot"
boot mnt/guest-kvm/latest/guest.qcow2 "boot 1" -snapshot
note "boot both flavours writable from the mount"
boot mnt/guest-kvm/latest/guest.qcow2 "boot 1"
boot mnt/guest-vmware/latest/guest.vmdk "boot 1"
[ "$(stat_of mnt 'j["reads"]["errors"]')" = 0 ] || fail "read errors during boot"
[ "$(stat_of mnt 'j["writes"]["requests"]')" -gt 0 ] || fail "the guests wrote nothing"
$LM umount mnt >/dev/null

note "after a remount the guests find what they wrote"
mount_repo repo mnt
boot mnt/guest-kvm/latest/guest.qcow2 "boot 2"
boot mnt/guest-vmware/latest/guest.vmdk "boot 2"

note "back to production: restored with its overlay, the copy boots from local disk and finds its writes"
$LM restore repo guest-kvm@latest production --with-overlay --state-dir "$WORK/state" >/dev/null \
  || fail "restore --with-overlay"
[ ! -e production/guest.raw ] && [ ! -e production/guest.vmx ] || fail "restore --with-overlay restored the mount's views"
boot production/guest.qcow2 "boot 3"
note "a live copy becomes a new backup copy, reading only what the guest wrote"
$LM backup --from-mount mnt guest-vmware@latest --vm guest-vmware-live --json >live.json || fail "backup --from-mount"
reused=$(json_get live.json 'j["from_mount"]["chunks_reused"]')
read_again=$(json_get live.json 'j["from_mount"]["chunks_read"]')
[ "$reused" -gt "$read_again" ] || fail "backup --from-mount read $read_again chunks and reused only $reused"
$LM restore repo guest-vmware-live live-restored >/dev/null
for f in mnt/guest-vmware/latest/*; do
  if getfattr -n user.livemount.view "$f" >/dev/null 2>&1; then  # a view: made by the mount, not kept
    [ ! -e "live-restored/$(basename "$f")" ] || fail "$(basename "$f"): a view went into the new copy"
    continue
  fi
  [ -L "$f" ] || cmp -s "$f" "live-restored/$(basename "$f")" || fail "$(basename "$f"): the new copy differs from the mount"
done
ls live-restored/guest.raw >/dev/null 2>&1 && fail "the raw view went into the new copy"
boot mnt/guest-vmware-live/latest/guest.vmdk "boot 3"
$LM umount mnt >/dev/null
$LM verify repo --read-data >/dev/null || fail "the repository changed"
$LM restore repo guest-kvm restored >/dev/null
cmp -s restored/guest.qcow2 vms/kvm/guest.qcow2 || fail "the backup copy changed"
check_log
echo "boot_from_mount: all checks passed"
