#!/usr/bin/env bash
# Guest files: ext4 (mkfs.ext4 -d) and NTFS (mkntfs, ntfscp) guest disks with MBR and GPT,
# as raw, compressed qcow2 (v3 deflate and zstd, v2), VMDK monolithicSparse and
# streamOptimized images. For every
# picked file: ls lists it, cat gives its bytes, and the image ranges profile add-files
# records are enough to read it back exactly (every other byte of the image zeroed).
# After add-files and prestage, reading the files through the live mount reads nothing
# from the repository. backup --select-files attaches them to the backup copy. Damaged
# superblocks, partition tables and qcow2 headers are one-line errors.
LM=$1
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$WORK"

note "build guest disks: ext4 on MBR, NTFS on GPT"
mkdir -p tree/etc tree/var/db tree/deep/a/b/c
echo "UUID=1234 / ext4 defaults 0 1" >tree/etc/fstab
head -c 3000000 /dev/urandom >tree/var/db/data.bin
seq 1 200000 >tree/var/db/log.txt
echo deep >tree/deep/a/b/c/leaf.txt
for i in $(seq 300); do echo "file $i" >tree/etc/many-$i.conf; done
mkfs.ext4 -q -d tree -L guestroot ext.part 40M >/dev/null
truncate -s 24M ntfs.part
mkntfs -q -F -L winvol -s 512 -c 4096 ntfs.part >/dev/null 2>&1
ntfscp -q ntfs.part tree/var/db/data.bin data.bin >/dev/null 2>&1 || ntfscp ntfs.part tree/var/db/data.bin data.bin
ntfscp ntfs.part tree/etc/fstab notes.txt >/dev/null 2>&1
python3 - <<'PY'
import struct, zlib, uuid
def mbr_disk(part, out):
    disk = bytearray(1 << 20) + bytearray(open(part, "rb").read()) + bytearray(1 << 20)
    n = (len(disk) - (2 << 20)) // 512
    disk[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, n)
    disk[510:512] = b"\x55\xaa"
    open(out, "wb").write(disk)
def gpt_disk(part, out):
    data = open(part, "rb").read()
    total = (2 << 20) + len(data) + (1 << 20)
    disk = bytearray(total)
    disk[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0xEE, b"\0\0\0", 1, total // 512 - 1)
    disk[510:512] = b"\x55\xaa"
    first, last = 4096, 4096 + len(data) // 512 - 1
    name = "windata".encode("utf-16-le").ljust(72, b"\0")
    entry = uuid.UUID("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7").bytes_le + uuid.uuid4().bytes_le + struct.pack("<QQQ", first, last, 0) + name
    entries = entry.ljust(128 * 128, b"\0")
    hdr = bytearray(struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, 1, total // 512 - 1, 34,
                                total // 512 - 34, uuid.uuid4().bytes_le, 2, 128, 128, zlib.crc32(entries)))
    struct.pack_into("<I", hdr, 16, zlib.crc32(bytes(hdr[:92])))
    disk[512:512 + 92] = hdr
    disk[1024:1024 + len(entries)] = entries
    disk[first * 512:first * 512 + len(data)] = data
    open(out, "wb").write(disk)
mbr_disk("ext.part", "ext-mbr.raw")
gpt_disk("ntfs.part", "ntfs-gpt.raw")
PY
sfdisk -d ntfs-gpt.raw 2>/dev/null | grep -q 'windata' || fail "the GPT test disk is not valid"

mkdir -p vms/raw vms/qcow2 vms/zstd vms/sparse vms/stream
cp ext-mbr.raw vms/raw/disk.raw
cp ntfs-gpt.raw vms/raw/win.raw
qemu-img convert -q -c -O qcow2 ext-mbr.raw vms/qcow2/disk.qcow2
qemu-img convert -q -c -O qcow2 ntfs-gpt.raw vms/qcow2/win.qcow2
qemu-img convert -q -c -O qcow2 -o compression_type=zstd ext-mbr.raw vms/zstd/disk.qcow2
qemu-img convert -q -c -O qcow2 -o compat=0.10 ntfs-gpt.raw vms/zstd/win.qcow2   # qcow2 v2
qemu-img convert -q -O vmdk -o subformat=monolithicSparse ext-mbr.raw vms/sparse/disk.vmdk
qemu-img convert -q -O vmdk -o subformat=monolithicSparse ntfs-gpt.raw vms/sparse/win.vmdk
qemu-img convert -q -O vmdk -o subformat=streamOptimized ext-mbr.raw vms/stream/disk.vmdk
qemu-img convert -q -O vmdk -o subformat=streamOptimized ntfs-gpt.raw vms/stream/win.vmdk
$LM init repo --encryption none >/dev/null
for f in raw qcow2 zstd sparse stream; do $LM backup repo vms/$f --vm $f >/dev/null; done

PICKS="/sda1/etc/fstab /sda1/var/db/data.bin /sda1/var/db/log.txt /sda1/deep/a/b/c/leaf.txt /sdb1/data.bin /sdb1/notes.txt"
want_of() {  # guest path -> source file
  case $1 in
    /sda1/*) echo "tree/${1#/sda1/}" ;;
    /sdb1/data.bin) echo tree/var/db/data.bin ;;
    /sdb1/notes.txt) echo tree/etc/fstab ;;
  esac
}
for f in raw qcow2 zstd sparse stream; do
  note "$f: ls, cat and resolved ranges"
  $LM ls repo "$f:/" >ls.out
  grep -qE '^sda1 +ext4 .*guestroot' ls.out || { cat ls.out; fail "$f: ls / lacks the ext4 volume"; }
  grep -qE '^sdb1 +ntfs .*winvol' ls.out || { cat ls.out; fail "$f: ls / lacks the NTFS volume"; }
  $LM ls repo "$f:/sda1/etc" | grep -c 'many-' | grep -qx 300 || fail "$f: ls /sda1/etc does not list 300 files"
  $LM ls repo "$f:/sdb1/" | grep -q ' data.bin$' || fail "$f: ls /sdb1 lacks data.bin"
  $LM profile add-files repo "$f" $PICKS --state-dir "state-$f" >/dev/null
  img=$(ls vms/$f | sort | head -1); img2=$(ls vms/$f | sort | tail -1)
  for p in $PICKS; do
    src=$(want_of "$p")
    $LM cat repo "$f:$p" | cmp -s - "$src" || fail "$f: cat $p differs"
    image=vms/$f/$img; [ "${p#/sdb1}" != "$p" ] && image=vms/$f/$img2
    name=${p#/sd?1}
    vol=/sda1; [ "${p#/sdb1}" != "$p" ] && vol=/sda1   # alone in its image, the disk is sda
    python3 "$HERE/mask_image.py" "state-$f/profiles/$f.json" "$image" "$p" masked.img
    $LM cat --image masked.img "$vol$name" | cmp -s - "$src" || fail "$f: $p cannot be read from its resolved ranges alone"
  done
done

note "add-files of a directory picks everything below it"
$LM profile add-files repo qcow2 /sda1/deep --state-dir state-dir >/dev/null
python3 -c "
import json; e = [x['note'] for x in json.load(open('state-dir/profiles/qcow2.json'))['entries'] if x['source'] == 'guest-file']
assert '/sda1/deep/a/b/c/leaf.txt' in e and '/sda1/deep/' in e, e"

note "after add-files and prestage, reading the files through the mount reads nothing from the repository"
export STATE_DIR=$WORK/state-qcow2
mount_repo repo mnt
$LM prestage repo qcow2 --mount mnt --state-dir "$STATE_DIR" >/dev/null
before=$(stat_of mnt 'j["repo"]["chunks_fetched"]')
for p in /sda1/etc/fstab /sda1/var/db/data.bin /sda1/var/db/log.txt; do
  $LM cat --image mnt/qcow2/latest/disk.qcow2 "$p" | cmp -s - "$(want_of $p)" || fail "read $p through the mount"
done
after=$(stat_of mnt 'j["repo"]["chunks_fetched"]')
[ "$before" = "$after" ] || fail "reading picked files fetched $((after - before)) chunks from the repository"
$LM umount mnt >/dev/null
check_log
unset STATE_DIR

note "backup --select-files attaches the picked files to the backup copy"
$LM backup repo vms/qcow2 --vm sel --select-files /sda1/var/db /sdb1/notes.txt >/dev/null
$LM profile export repo sel exported.json --state-dir state-none >/dev/null
python3 -c "
import json; j = json.load(open('exported.json'))
notes = [x['note'] for x in j['entries'] if x['source'] == 'guest-file']
assert '/sda1/var/db/data.bin' in notes and '/sdb1/notes.txt' in notes, notes
assert any(x['source'] == 'structural' for x in j['entries']), 'structural entries missing'"

note "damage: superblock, partition table, qcow2 header"
cp ext-mbr.raw bad-sb.raw
python3 -c "f = open('bad-sb.raw', 'r+b'); f.seek((1 << 20) + 1024); f.write(b'\0' * 1024)"
mkdir -p vms/bad1 vms/bad2 vms/bad3
cp bad-sb.raw vms/bad1/disk.raw
$LM backup repo vms/bad1 --vm bad1 >/dev/null
$LM ls repo bad1:/ | grep -q 'no ext2/3/4 or NTFS filesystem' || fail "a wiped superblock is not reported"
expect_fail "no ext2/3/4 or NTFS filesystem" $LM ls repo bad1:/sda1/etc
cp ntfs-gpt.raw vms/bad2/disk.raw
python3 -c "f = open('vms/bad2/disk.raw', 'r+b'); f.seek(512 + 40); f.write(b'\xff' * 8)"
$LM backup repo vms/bad2 --vm bad2 >/dev/null
$LM ls repo bad2:/ | grep -q 'GPT header checksum mismatch' || fail "a damaged GPT header is not reported"
expect_fail "GPT header checksum mismatch" $LM ls repo bad2:/sda/
cp vms/qcow2/disk.qcow2 vms/bad3/disk.qcow2
python3 -c "f = open('vms/bad3/disk.qcow2', 'r+b'); f.seek(40); f.write(b'\x7f' * 8)"
$LM backup repo vms/bad3 --vm bad3 >/dev/null
$LM ls repo bad3:/ | grep -q 'qcow2 header points outside the file' || fail "a damaged qcow2 header is not reported"
expect_fail "qcow2 header points outside the file" $LM cat --image vms/bad3/disk.qcow2 /sda1/etc/fstab
echo "guest_files: all checks passed"
