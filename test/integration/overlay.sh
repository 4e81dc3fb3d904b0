#!/usr/bin/env bash
# The writable overlay: POSIX parity with a native directory; writes survive a remount;
# a random exerciser matches a reference file; discard is refused while a file is open and
# restores the backup's view; list and stats show overlays; the backup never changes.
LM=$1
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$WORK"

make_vm_dirs vms 8
$LM init repo --encryption none >/dev/null
$LM backup repo vms/vmdk-flat --vm flat >/dev/null
$LM backup repo vms/raw --vm raw >/dev/null
$LM restore repo flat native >/dev/null
chmod 755 "$WORK" native  # another user (nobody) reaches both trees in the parity test
# Parity is about the backed-up files: the native copy has no cross-hypervisor views.
mount_repo repo mnt --allow-other --no-views

note "POSIX parity: the same syscalls on the overlay and on a native copy"
PARITY_OTHER_USER=1 python3 "$HERE/posix_parity.py" mnt/flat/latest native || fail "POSIX parity"

note "everything survives a remount"
$LM umount mnt >/dev/null
mount_repo repo mnt --no-views
python3 "$HERE/posix_parity.py" mnt/flat/latest native --compare-only || fail "overlay after remount"

note "random exerciser against a reference file"
cp vms/raw/disk.raw reference.raw
for seed in 1 2; do
  python3 "$HERE/exerciser.py" mnt/raw/latest/disk.raw reference.raw "${EXERCISER_OPS:-20000}" $seed \
    || fail "exerciser seed $seed"
done
$LM umount mnt >/dev/null
mount_repo repo mnt
cmp -s mnt/raw/latest/disk.raw reference.raw || fail "exerciser result after remount"

note "list and stats show the overlays"
$LM list repo --state-dir "$WORK/state" >list.txt
grep -E "^raw .* [0-9.]+ (KiB|MiB)$" list.txt >/dev/null || { cat list.txt; fail "list shows no overlay for raw"; }
[ "$(stat_of mnt 'len(j["overlays"])')" = 2 ] || fail "stats: expected 2 overlays"

note "discard: refused while a file is open, then back to the backup"
exec 3<mnt/raw/latest/disk.raw
expect_fail "open file" $LM discard mnt raw@latest
exec 3<&-
$LM discard mnt raw@latest >/dev/null || fail "discard"
cmp -s mnt/raw/latest/disk.raw vms/raw/disk.raw || fail "after discard the backup's bytes are back"
[ "$(stat_of mnt 'len(j["overlays"])')" = 1 ] || fail "stats: expected 1 overlay after discard"
expect_fail "VM@BACKUP" $LM discard mnt raw

note "root and VM directories stay read-only; the repository never changed"
expect_fail "" mkdir mnt/newvm
expect_fail "" touch mnt/raw/file
$LM umount mnt >/dev/null
$LM verify repo --read-data >/dev/null || fail "verify after writes"
check_log
echo "overlay: all checks passed"
