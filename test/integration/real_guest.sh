#!/usr/bin/env bash
# The real guest end to end (long: about 8 minutes under TCG). A Debian 12 VM made with
# mmdebstrap (systemd, its application, a data disk) is backed up, boots from the live
# mount to its application-ready line, and finds after a remount what it wrote before. The
# profile learned from its boots carries over to a newer backup copy taken after the guest
# changed: pre-staged, the next boot fetches only chunks the profile does not cover (and
# the test prints them beside the changed chunks).
# The VMware flavour of the same guest boots from the mount too.
LM=$1
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"
BOOT=$SRC/tools/boot-sample-vm.sh
export LIVEMOUNT_DEBIAN_ROOTFS=$WORK/rootfs  # one mmdebstrap run for both flavours

note "make the Debian guest (mmdebstrap), both flavours"
"$SRC/tools/make-sample-vm.sh" vm --distro debian --name deb --app-mib 48 --data-size 256M --seed t1 2>make.err ||
  { cat make.err; fail "make-sample-vm --distro debian"; }
"$SRC/tools/make-sample-vm.sh" vmw --distro debian --flavour vmware --name debw --app-mib 16 --data-size 128M \
  --seed t2 2>make.err || { cat make.err; fail "make-sample-vm --distro debian --flavour vmware"; }
ls vm/deb.qcow2 vm/deb-data.qcow2 vm/deb.xml vmw/debw.vmx vmw/debw.vmdk vmw/debw-flat.vmdk vmw/debw_1.vmdk \
  vmw/debw_1-flat.vmdk >/dev/null || fail "make-sample-vm --distro debian made no VM"
$LM init repo --encryption none >/dev/null
$LM backup repo vm --vm deb >/dev/null
$LM backup repo vmw --vm debw >/dev/null

boot() {  # boot OUTFILE DISK... [qemu options]: the guest must reach its application-ready line
  local out=$1; shift
  "$BOOT" "$@" >"$out" 2>&1 || { cat "$out"; fail "the guest did not boot from $1"; }
  grep -q "LIVEMOUNT-GUEST: multi-user.target reached" "$out" || { cat "$out"; fail "no multi-user.target"; }
  grep -q "LIVEMOUNT-GUEST: app ready" "$out" || { cat "$out"; fail "the application did not get ready"; }
}

note "boot from the live mount (writes go to the overlay), twice across a remount"
mount_repo repo mnt
boot boot1.out mnt/deb/latest/deb.qcow2 mnt/deb/latest/deb-data.qcow2
grep -q "(boot 1)" boot1.out || fail "first boot from the mount is not boot 1"
$LM umount mnt >/dev/null
mount_repo repo mnt
boot boot2.out mnt/deb/latest/deb.qcow2 mnt/deb/latest/deb-data.qcow2
grep -q "(boot 2)" boot2.out || { cat boot2.out; fail "the guest's writes did not survive the remount"; }
note "the VMware flavour boots from the mount"
boot bootw.out mnt/debw/latest/debw.vmdk mnt/debw/latest/debw_1.vmdk -snapshot
$LM umount mnt >/dev/null
check_log

note "the learned profile carries over to a newer backup copy of the changed guest"
$LM profile learn deb --state-dir state >/dev/null
boot local.out vm/deb.qcow2 vm/deb-data.qcow2  # the guest changes: its logs, its journal
$LM backup repo vm --vm deb --json >b2.json
new_bytes=$(json_get b2.json 'j["new_bytes"]')
changed=$(( (new_bytes + 131071) / 131072 ))
$LM prestage repo deb --cache-dir "$WORK/cache2" --state-dir state >pre.out
grep -q "from profile .*state/profiles/deb.json" pre.out || { cat pre.out; fail "prestage did not use the learned profile"; }
CACHE_DIR=$WORK/cache2 STATE_DIR=$WORK/state2 mount_repo repo mnt --readahead 0 --record-reads "$WORK/boot3.reads"
boot boot3.out mnt/deb/latest/deb.qcow2 mnt/deb/latest/deb-data.qcow2 -snapshot
misses=$(stat_of mnt 'j["repo"]["chunks_fetched"]')
hits=$(stat_of mnt 'j["cache"]["hits"]')
$LM umount mnt >/dev/null
# The chunks this boot read outside the profile learned on the older copy: a guest does not
# boot the same way twice (journald, allocations), so some reads are new whatever changed.
outside=$(python3 - state/profiles/deb.json boot3.reads <<'PY'
import json, sys
C = 131072
profile = json.load(open(sys.argv[1]))
covered = {(e["file"], i) for e in profile["entries"] for off, n in e["ranges"]
           for i in range(off // C, (off + n - 1) // C + 1)}
read = set()
for line in open(sys.argv[2]):
    what, off, n = line.rsplit(" ", 2)
    off, n = int(off), int(n)
    if n:
        read |= {(what.split(":", 1)[1], i) for i in range(off // C, (off + n - 1) // C + 1)}
print(len(read - covered))
PY
)
echo "pre-staged boot of the newer copy: $misses chunks fetched, $hits cache hits; $changed chunks changed" \
  "since the copy the profile was learned on, $outside chunks read outside the profile"
[ "$hits" -gt 0 ] || fail "the pre-staged boot found nothing in the cache"
# Carried over, the profile brought every chunk it covers, changed or not: what the boot
# fetched lies outside it.
[ "$misses" -le "$outside" ] || fail "the boot fetched $misses chunks, more than the $outside it read outside the profile"
check_log
