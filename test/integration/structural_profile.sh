#!/usr/bin/env bash
# Structural profiles name exactly the metadata of qcow2 (v2 and v3) and VMDK sparse images
# (checked against qemu-img map and the images' bytes), and the guest's partition tables
# (MBR with extended and logical partitions, GPT; checked against sfdisk) in raw, qcow2
# and VMDK images.
LM=$1
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$WORK"

mkdir -p vm
# An MBR disk: two primaries and an extended partition with two logical ones.
make_raw_disk vm/mbr.raw 48
sfdisk -q vm/mbr.raw <<PART
label: dos
start=2048, size=16384, type=83
start=18432, size=16384, type=83
start=34816, size=55296, type=5
start=36864, size=20480, type=83
start=59392, size=28672, type=83
PART
# A GPT disk with three partitions.
make_raw_disk vm/gpt.raw 40
sfdisk -q vm/gpt.raw <<PART
label: gpt
start=2048, size=20480
start=22528, size=20480
start=43008, size=30000
PART
qemu-img convert -q -f raw -O qcow2 vm/mbr.raw vm/mbr.qcow2
qemu-img convert -q -f raw -O qcow2 -o compat=0.10 vm/gpt.raw vm/gpt-v2.qcow2
qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse vm/mbr.raw vm/mbr.vmdk
echo 'displayName = "s"' >vm/s.vmx
$LM init repo --encryption none >/dev/null
$LM backup repo vm --vm s >/dev/null
$LM profile export repo s profile.json --state-dir "$WORK/state" | grep -q "(structural)" \
  || fail "no structural profile"
$LM profile show profile.json

note "format metadata, against qemu-img map"
for img in mbr.qcow2 gpt-v2.qcow2 mbr.vmdk; do
  python3 "$HERE/check_structural.py" profile.json "$img" "vm/$img" || fail "$img metadata"
done

note "partition tables, against sfdisk"
python3 - profile.json <<'PY' || fail "partition starts"
import json, subprocess, sys
entries = json.load(open(sys.argv[1]))["entries"]
def starts(name):
    return {o for e in entries if e["file"] == name and "partition start" in e.get("note", "")
            for o, n in e["ranges"][:1]}
def sf(path):
    parts = json.loads(subprocess.run(["sfdisk", "--json", path], capture_output=True, check=True).stdout)
    return {p["start"] * 512 for p in parts["partitiontable"]["partitions"] if p["type"] not in ("5", "f", "85")}
for raw in ("mbr.raw", "gpt.raw"):
    want, got = sf("vm/" + raw), starts(raw)
    assert want == got, (raw, sorted(want), sorted(got))
    print(raw, "partition starts match sfdisk:", len(want))
# Through the image formats: as many partition starts as the raw disk has.
for img, raw in (("mbr.qcow2", "mbr.raw"), ("mbr.vmdk", "mbr.raw"), ("gpt-v2.qcow2", "gpt.raw")):
    n = len([e for e in entries if e["file"] == img and "partition start" in e.get("note", "")])
    assert n == len(sf("vm/" + raw)), (img, n)
    print(img, "partition starts mapped:", n)
assert any(e["file"] == "s.vmx" for e in entries)
assert any(e["file"] == "gpt.raw" and e.get("note") == "guest backup GPT" for e in entries)
PY

note "prestage of the structural profile"
$LM prestage repo s --cache-dir "$WORK/cache" --state-dir "$WORK/state" | grep -q "from profile structural" \
  || fail "prestage did not use the structural profile"
note "a damaged qcow2 header gives a clear error in the profile notes, never a crash"
printf 'QFI\xfb\x00\x00\x00\x09' | dd of=vm/mbr.qcow2 bs=1 conv=notrunc status=none
$LM backup repo vm --vm s2 >/dev/null
$LM profile export repo s2 p2.json --state-dir "$WORK/state" >/dev/null 2>notes.err || fail "export with a damaged image"
grep -q "mbr.qcow2: qcow2 version 9" notes.err || { cat notes.err; fail "the damaged image is not named"; }
echo "structural_profile: all checks passed"
