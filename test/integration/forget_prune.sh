#!/usr/bin/env bash
# Retention on a repository a live mount serves: forget keeps the copy whose file the
# mount has open (its lease says so), prune repacks while the mount reads every byte, and
# once the file is closed the copy can go; the repository then verifies clean.
LM=$1
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir vm
make_raw_disk vm/disk.raw 24
$LM init repo --encryption none --chunk-size 64K >/dev/null
for i in 1 2 3; do
  head -c $((4 << 20)) /dev/urandom | dd of=vm/disk.raw bs=1M seek=$((i * 5)) conv=notrunc status=none
  cp vm/disk.raw disk.$i
  $LM backup repo vm --vm vm1 >/dev/null
  sleep 1.1  # one backup id per second
done
mapfile -t IDS < <($LM list repo --json | python3 -c 'import json,sys; [print(b["id"]) for b in json.load(sys.stdin)["vms"][0]["backups"]]')
[ ${#IDS[@]} -eq 3 ] || fail "expected 3 backup copies"
mount_repo repo mnt

note "forget keeps the copy the mount has open"
exec 3<"mnt/vm1/${IDS[0]}/disk.raw"
$LM forget repo vm1 --keep-last 1 --json >f.json || fail "forget failed"
json_get f.json 'j["removed"]' | grep -qx 1 || { cat f.json; fail "forget should remove exactly the unheld copy"; }
json_get f.json '[c["held_by"] for c in j["copies"] if c["backup"] == "'"${IDS[0]}"'"][0]' | grep -q "open files" ||
  { cat f.json; fail "the open copy is not reported as held"; }
[ "$($LM list repo --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vms"][0]["backups"]))')" = 2 ] ||
  fail "the held copy was forgotten"

note "prune repacks while the mount reads every byte"
( for _ in 1 2 3; do
    cmp -s <(cat <&3; cat "mnt/vm1/${IDS[0]}/disk.raw") <(cat disk.1 disk.1) || { echo "read differs" >reader.err; exit 1; }
    cmp -s "mnt/vm1/${IDS[2]}/disk.raw" disk.3 || { echo "read differs" >reader.err; exit 1; }
    exec 3<"mnt/vm1/${IDS[0]}/disk.raw"
  done ) & reader=$!
$LM prune repo --max-unused 0% >p.out || { cat p.out; fail "prune failed"; }
wait $reader || fail "a read through the mount failed or differed during prune: $(cat reader.err 2>/dev/null)"
grep -q "reclaimed" p.out || fail "prune printed no summary"
cmp -s "mnt/vm1/${IDS[0]}/disk.raw" disk.1 || fail "held copy reads differ after prune"

note "once closed, the copy can go"
exec 3<&-
for _ in $(seq 100); do
  $LM forget repo vm1 --keep-last 1 --dry-run --json >d.json
  [ "$(json_get d.json 'j["held"]')" = 0 ] && break
  sleep 0.1
done
[ "$(json_get d.json 'j["held"]')" = 0 ] || fail "the hold did not end when the file closed"
$LM forget repo vm1 --keep-last 1 --prune --max-unused 0% >/dev/null || fail "forget --prune failed"
$LM verify repo --read-data >v.out || { cat v.out; fail "verify after prune"; }
grep -q "note:" v.out && { cat v.out; fail "verify still sees leftovers or unreferenced data"; }
cmp -s "mnt/vm1/${IDS[2]}/disk.raw" disk.3 || fail "the kept copy reads differ"
$LM stats repo --json >s.json || fail "stats REPO failed"
[ "$(json_get s.json 'j["reclaimable_bytes"]')" = 0 ] || { cat s.json; fail "stats: prune left reclaimable bytes"; }
[ "$(json_get s.json 'len(j["copies"])')" = 1 ] || fail "stats: expected one copy"
$LM stats mnt --json >/dev/null || fail "stats MOUNTPOINT stopped working"
$LM umount mnt >/dev/null
[ -z "$(find repo/leases -mindepth 1 2>/dev/null)" ] || fail "the mount left its lease behind"
expect_fail "no retention rule" $LM forget repo
$LM restore repo vm1 restored >/dev/null && cmp -s restored/disk.raw disk.3 || fail "restore after prune differs"
check_log
note "ok"
