#!/usr/bin/env bash
# A damaged chunk in the repository gives EIO for the range it covers, never zeros; every
# other range keeps working; the daemon logs it once, naming the chunk and the file. A
# damaged read-cache slot is dropped and fetched again.
LM=$1
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir vm
head -c $((4 << 20)) /dev/urandom >vm/disk.raw   # 32 chunks of 128 KiB, one pack
$LM init repo --encryption none >/dev/null
$LM backup repo vm --vm v >/dev/null
pack=$(ls repo/packs/*/*.pack)
# Chunk records are written in file order, each 48 bytes of header + 128 KiB (random data
# is stored raw): a byte in the middle of record 5 damages file bytes 5*128K.. only.
python3 - "$pack" <<'PY'
import sys
off = 16 + 5 * (48 + 131072) + 48 + 1000
with open(sys.argv[1], "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xFF]))
PY
mount_repo repo mnt --readahead 0
f=mnt/v/latest/disk.raw
rc=0; dd if=$f of=/dev/null bs=128K skip=5 count=1 status=none 2>err || rc=$?
[ $rc -ne 0 ] && grep -q "Input/output error" err || fail "damaged range did not give EIO"
rc=0; dd if=$f of=/dev/null bs=4K skip=$((5 * 32 + 7)) count=1 status=none 2>err || rc=$?
[ $rc -ne 0 ] || fail "a 4K read inside the damaged chunk succeeded"
for skip in 0 4 6 31; do
  dd if=$f of=part bs=128K skip=$skip count=1 status=none || fail "undamaged chunk $skip failed"
  dd if=vm/disk.raw of=want bs=128K skip=$skip count=1 status=none
  cmp -s part want || fail "undamaged chunk $skip differs"
done
# Reading again still fails (no zeros were cached), and the log names it once.
rc=0; dd if=$f of=/dev/null bs=128K skip=5 count=1 iflag=direct status=none 2>/dev/null || rc=$?
[ $rc -ne 0 ] || fail "second read of the damaged range succeeded"
n=$(grep -c "damaged or missing chunk" state/livemount.log)
[ "$n" = 1 ] || fail "expected the damage logged once, got $n"
grep "damaged or missing chunk" state/livemount.log | grep -q "v@.*:disk.raw" || fail "log does not name the file"
[ "$(stat_of mnt 'j["repo"]["errors"]')" -ge 1 ] || fail "stats show no repository error"

note "a damaged cache slot is dropped and fetched again"
$LM umount mnt >/dev/null
dd if=vm/disk.raw of=/dev/null bs=1 count=0 status=none
python3 - cache/data <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:   # slot 0 holds the first chunk read: chunk 0
    f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 0xFF]))
PY
mount_repo repo mnt --readahead 0
drop_caches
dd if=mnt/v/latest/disk.raw of=part bs=128K count=1 status=none || fail "read after cache damage"
dd if=vm/disk.raw of=want bs=128K count=1 status=none
cmp -s part want || fail "damaged cache slot served wrong bytes"
[ "$(stat_of mnt 'j["cache"]["corrupt_dropped"]')" = 1 ] || fail "cache damage not counted"
[ "$(stat_of mnt 'j["repo"]["chunks_fetched"]')" = 1 ] || fail "damaged slot not fetched again"
$LM umount mnt >/dev/null
check_log "damaged or missing chunk|failed its checksum"
echo "mount_damage: all checks passed"
