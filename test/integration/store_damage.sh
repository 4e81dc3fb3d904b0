#!/usr/bin/env bash
# Damaged repositories: a flipped byte in a pack, a truncated pack, garbled index and
# metadata files. verify names the damage and exits non-zero; reads give a clear error;
# nothing crashes and nothing returns wrong bytes.
LM=$1
source "$(dirname "$0")/lib.sh"
cd "$WORK"

flip() {  # flip FILE OFFSET
  chmod u+w "$1"
  python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0x5A]))
PY
}

make_vm_dirs vms 12
$LM init repo --encryption none >/dev/null
$LM backup repo vms/raw --vm raw >/dev/null
raw_pack=$(ls repo/packs/*/*.pack | head -1)  # 12 MiB: one pack holds the raw VM
[ "$(ls repo/packs/*/*.pack | wc -l)" -eq 1 ] || fail "expected one pack for the raw VM"
mkdir other && head -c $((6 << 20)) /dev/urandom >other/disk.raw
$LM backup repo other --vm other >/dev/null
id=$($LM list repo raw --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vms"][0]["backups"][0]["id"])')
cp -a repo pristine
$LM verify repo --read-data >/dev/null || fail "fresh repository does not verify"

note "flipped byte in a pack"
# A byte in the random third of the raw VM's disk.
flip "$raw_pack" 1000000
$LM verify repo >v-struct.out || fail "structure-only verify should not read data"
rc=0; $LM verify repo --read-data >v.out 2>v.err || rc=$?
[ $rc -eq 1 ] || fail "verify --read-data exit $rc, expected 1"
grep -q "damaged chunk" v.out || fail "verify did not name the damaged chunk"
grep -q "used by raw@$id:disk.raw" v.out || { cat v.out; fail "verify did not name the file"; }
grep -q "DAMAGED" v.out || fail "no DAMAGED summary"
[ "$(wc -l <v.err)" -eq 1 ] || fail "verify: expected one stderr line"
$LM verify repo --read-data --json >v.json || true
[ "$(json_get v.json 'j["ok"]')" = False ] || fail "verify --json ok should be false"
[ "$(json_get v.json 'len(j["damaged_chunks"])')" = 1 ] || fail "expected one damaged chunk"
expect_fail "SHA-256 mismatch" $LM restore repo raw out-raw
[ ! -e out-raw/disk.raw ] || fail "restore left a partial disk.raw"
# The other VM, which shares no chunk with it, still restores.
$LM restore repo other out-other >/dev/null || fail "undamaged VM no longer restores"
same_tree other out-other

note "truncated pack"
rm -rf repo && cp -a pristine repo
truncate -s 500000 "$raw_pack"
rc=0; $LM verify repo >v.out 2>/dev/null || rc=$?
[ $rc -eq 1 ] || fail "verify of truncated pack exit $rc"
grep -q "error: .*pack" v.out || { cat v.out; fail "truncated pack not named"; }
expect_fail "raw" $LM restore repo raw out2

note "garbled index file"
rm -rf repo && cp -a pristine repo
idx=$(ls repo/index/*.idx | head -1)
flip "$idx" 100
rc=0; $LM verify repo --read-data >v.out 2>/dev/null || rc=$?
[ $rc -eq 1 ] || fail "verify of garbled index exit $rc"
grep -q "error: .*\.idx: checksum mismatch" v.out || { cat v.out; fail "garbled index not named"; }
# Chunks are still found through the packs' own tables.
$LM restore repo raw out3 >/dev/null || fail "restore with a garbled index file"
cmp -s out3/disk.raw vms/raw/disk.raw || fail "restore with garbled index differs"

note "garbled backup.json and file index"
rm -rf repo && cp -a pristine repo
flip "repo/backups/raw/$id/backup.json" 40
rc=0; $LM verify repo >v.out 2>/dev/null || rc=$?
[ $rc -eq 1 ] || fail "verify of garbled backup.json exit $rc"
grep -q "backup.json: checksum mismatch" v.out || { cat v.out; fail "garbled backup.json not named"; }
expect_fail "backup.json: checksum mismatch" $LM restore repo raw out4
$LM list repo >l.out 2>l.err || true
grep -q "(damaged)" l.out || fail "list does not flag the damaged backup"
rm -rf repo && cp -a pristine repo
flip "repo/backups/raw/$id/files/0.fidx" 80
expect_fail "0.fidx" $LM restore repo raw out5
rc=0; $LM verify repo >v.out 2>/dev/null || rc=$?
[ $rc -eq 1 ] || fail "verify of garbled fidx exit $rc"

note "garbled config"
rm -rf repo && cp -a pristine repo
echo "garbage" >repo/config
expect_fail "repo/config" $LM list repo
echo "store_damage: all checks passed"
