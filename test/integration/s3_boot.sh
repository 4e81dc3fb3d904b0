#!/usr/bin/env bash
# End to end on a real Ceph RGW: the sample VM, backed up into an encrypted S3 repository,
# boots in QEMU (TCG) from the live mount, both flavours. A cold boot makes no more GETs
# than chunks it fetched; a boot after a pre-stage makes no GET for a chunk at all; a boot
# during which radosgw is stopped for 30 s waits, then goes on, without an I/O error; and a
# boot during which radosgw restarts goes on too.
LM=$1
CLUSTER="bash $(cd "$(dirname "$0")" && pwd)/ceph/cluster.sh"
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
s3_setup
cd "$WORK"
cleanup_hooks+=("$CLUSTER resume '$LM_CEPH_DIR'")
R=$(s3_repo boot)
echo "s3 boot password" >pw
export LIVEMOUNT_PASSWORD_FILE=$WORK/pw

"$SRC/tools/make-sample-vm.sh" vms/kvm --flavour kvm --name guest >/dev/null
"$SRC/tools/make-sample-vm.sh" vms/vmware --flavour vmware --name guest >/dev/null
$LM init "$R" >/dev/null
$LM backup "$R" vms/kvm --vm guest-kvm >/dev/null
$LM backup "$R" vms/vmware --vm guest-vmware >/dev/null

boot() {  # boot DISK [qemu options]
  local disk=$1; shift
  "$SRC/tools/boot-sample-vm.sh" "$disk" "$@" >boot.out 2>&1 || { cat boot.out; fail "$disk did not boot"; }
  grep -q "LIVEMOUNT-GUEST: wrote /data/boot-log.txt" boot.out || { cat boot.out; fail "$disk: the guest did not finish"; }
}
chunk_gets='sum(k["gets"] for n, k in j["requests"].items() if n != "other")'

note "cold boot of both flavours from the mount of an S3 repository"
mount_repo "$R" mnt --readahead 0
boot mnt/guest-kvm/latest/guest.qcow2 -snapshot
boot mnt/guest-vmware/latest/guest.vmdk -snapshot
gets=$(stat_of mnt "$chunk_gets")
fetched=$(stat_of mnt 'j["repo"]["chunks_fetched"]')
[ "$fetched" -gt 0 ] || fail "the cold boots fetched nothing"
[ "$gets" -le "$fetched" ] || fail "the cold boots made $gets GETs for $fetched chunks"
[ "$(stat_of mnt 'j["reads"]["errors"]')" = 0 ] || fail "read errors during the cold boots"
$LM umount mnt >/dev/null

note "a boot after a pre-stage makes no GET for a chunk"
CACHE_DIR=$WORK/cache2 STATE_DIR=$WORK/state2 mount_repo "$R" mnt2
$LM prestage "$R" guest-kvm --mount mnt2 --all --state-dir "$WORK/state2" >pre.out || { cat pre.out; fail "prestage"; }
before=$(STATE_DIR=$WORK/state2 stat_of mnt2 "$chunk_gets")
boot mnt2/guest-kvm/latest/guest.qcow2
after=$(STATE_DIR=$WORK/state2 stat_of mnt2 "$chunk_gets")
[ "$after" = "$before" ] || fail "the pre-staged boot made $((after - before)) GETs"
$LM umount mnt2 >/dev/null

note "radosgw stopped for 30 s during a cold boot: the guest waits, then boots"
CACHE_DIR=$WORK/cache3 STATE_DIR=$WORK/state3 mount_repo "$R" mnt3 --readahead 0
( BOOT_TIMEOUT=300 "$SRC/tools/boot-sample-vm.sh" mnt3/guest-vmware/latest/guest.vmdk -snapshot >boot3.out 2>&1 ) & qemu=$!
for _ in $(seq 100); do  # stop the store once the boot is reading from it
  [ "$(STATE_DIR=$WORK/state3 stat_of mnt3 "$chunk_gets")" -gt 5 ] && break
  sleep 0.1
done
$CLUSTER pause "$LM_CEPH_DIR"
sleep 30
kill -0 $qemu 2>/dev/null || { cat boot3.out; fail "the boot ended while the store was stopped (it did not need it?)"; }
$CLUSTER resume "$LM_CEPH_DIR"
wait $qemu || { cat boot3.out; fail "the boot failed across the stop"; }
grep -q "LIVEMOUNT-GUEST: wrote /data/boot-log.txt" boot3.out || { cat boot3.out; fail "the guest did not finish"; }
grep -qi "I/O error" boot3.out && { cat boot3.out; fail "the guest saw an I/O error"; }
[ "$(STATE_DIR=$WORK/state3 stat_of mnt3 'j["reads"]["errors"]')" = 0 ] || fail "reads failed across the stop"
$LM umount mnt3 >/dev/null

note "radosgw restarted during a cold boot: the guest boots, no read fails"
CACHE_DIR=$WORK/cache4 STATE_DIR=$WORK/state4 mount_repo "$R" mnt4 --readahead 0
( BOOT_TIMEOUT=300 "$SRC/tools/boot-sample-vm.sh" mnt4/guest-kvm/latest/guest.qcow2 -snapshot >boot4.out 2>&1 ) & qemu=$!
for _ in $(seq 100); do
  [ "$(stat_of mnt4 "$chunk_gets")" -gt 5 ] && break
  sleep 0.1
done
kill -0 $qemu 2>/dev/null || { cat boot4.out; fail "the boot ended before the restart"; }
$CLUSTER restart-rgw "$LM_CEPH_DIR"
wait $qemu || { cat boot4.out; fail "the boot failed across a radosgw restart"; }
grep -q "LIVEMOUNT-GUEST: wrote /data/boot-log.txt" boot4.out || { cat boot4.out; fail "the guest did not finish"; }
grep -qi "I/O error" boot4.out && { cat boot4.out; fail "the guest saw an I/O error across the restart"; }
[ "$(stat_of mnt4 'j["reads"]["errors"]')" = 0 ] || fail "reads failed across the restart"
$LM umount mnt4 >/dev/null
check_log
STATE_DIR=$WORK/state2 check_log
STATE_DIR=$WORK/state3 check_log
STATE_DIR=$WORK/state4 check_log "could not refresh|retry"
