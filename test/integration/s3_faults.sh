#!/usr/bin/env bash
# The object store fails under a running data agent and media agent, on a real Ceph RGW:
#  - radosgw restarted during a backup: the backup finishes, the copy restores byte for byte;
#  - radosgw restarted during a pre-stage: the pre-stage finishes with no failed chunk;
#  - radosgw stopped (SIGSTOP) for 30 s while a reader reads cold data through the mount
#    (requests stalled for 5 s are sent again):
#    the reader waits, then gets the right bytes (no EIO), and the retries are counted.
LM=$1
CLUSTER="bash $(cd "$(dirname "$0")" && pwd)/ceph/cluster.sh"
source "$(dirname "$0")/lib.sh"
s3_setup
cd "$WORK"
cleanup_hooks+=("$CLUSTER resume '$LM_CEPH_DIR'")  # never leave radosgw stopped
R=$(s3_repo faults)
$LM init "$R" --encryption none >/dev/null
mkdir -p vm
make_raw_disk vm/disk.raw 96
head -c $((160 << 20)) /dev/urandom >>vm/disk.raw  # long enough to be mid-upload at the restart

note "radosgw restarted during a backup"
LIVEMOUNT_S3_TRACE=1 $LM backup "$R" vm --vm vm1 >b.out 2>&1 & backup=$!
sleep 0.7
$CLUSTER restart-rgw "$LM_CEPH_DIR"
wait $backup || { cat b.out; fail "the backup did not survive a radosgw restart"; }
grep -qE -- "-> (0|5[0-9][0-9]) " b.out || fail "the backup met no failed request: the restart came too late to test anything"
$LM restore "$R" vm1 r1 >/dev/null || fail "restore after the restart"
cmp -s r1/disk.raw vm/disk.raw || fail "the copy written across a restart differs"
$LM verify "$R" --read-data >/dev/null || fail "verify after the restart"

note "radosgw restarted during a pre-stage"
mount_repo "$R" mnt
$LM prestage "$R" vm1 --mount mnt --all --state-dir "$WORK/state" >pre.out 2>&1 & pre=$!
sleep 0.5
$CLUSTER restart-rgw "$LM_CEPH_DIR"
wait $pre || { cat pre.out; fail "the pre-stage did not survive a radosgw restart"; }
grep -q " 0 failed" pre.out || { cat pre.out; fail "chunks failed across the restart"; }
[ "$(stat_of mnt 'j["requests"]["hydrate"]["retries"] + j["requests"].get("prestage", {"retries": 0})["retries"]')" -gt 0 ] ||
  fail "the pre-stage met no failed request: the restart came too late to test anything"
cmp -s mnt/vm1/latest/disk.raw vm/disk.raw || fail "reads after the pre-stage"
$LM umount mnt >/dev/null

note "radosgw stopped for 30 s while a reader reads through the mount"
# A request that gets no byte for 5 s is sent again: a 30 s stop must then show retries,
# where with the default 30 s the stalled request could as well just finish on resume.
export LIVEMOUNT_S3_STALL_TIMEOUT=5
CACHE_DIR=$WORK/cache2 STATE_DIR=$WORK/state2 mount_repo "$R" mnt2 --readahead 0
( dd if=mnt2/vm1/latest/disk.raw of=read.raw bs=64K status=none ) & reader=$!
sleep 0.3
$CLUSTER pause "$LM_CEPH_DIR"
sleep 30
kill -0 $reader 2>/dev/null || fail "the reader finished while the store was stopped (nothing was read from it?)"
$CLUSTER resume "$LM_CEPH_DIR"
wait $reader || fail "the reader got an error while the store was stopped"
cmp -s read.raw vm/disk.raw || fail "the reader got wrong bytes across the stop"
# Of whichever kind the stalled request was: under load the reader may still be opening
# the file (its chunk list, "other") when the store stops, not yet reading chunks ("guest").
[ "$(STATE_DIR=$WORK/state2 stat_of mnt2 'sum(k["retries"] for k in j["requests"].values())')" -gt 0 ] ||
  fail "no retry was counted across the stop"
[ "$(STATE_DIR=$WORK/state2 stat_of mnt2 'j["reads"]["errors"]')" = 0 ] || fail "reads failed across the stop"
$LM umount mnt2 >/dev/null
STATE_DIR=$WORK/state2 check_log "could not refresh|retry"
