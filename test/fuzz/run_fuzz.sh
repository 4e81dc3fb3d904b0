#!/usr/bin/env bash
# Builds the parsers' fuzz targets with clang's libFuzzer (and AddressSanitizer) and runs
# each briefly from a seed corpus of real images: qcow2 (plain and compressed), VMDK sparse
# and stream, MBR and GPT disks, ext4 and NTFS filesystems.
#   test/fuzz/run_fuzz.sh [SECONDS_PER_TARGET=15]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-15}
command -v clang++ >/dev/null || { echo "run_fuzz: clang++ is not installed (tools/install-deps.sh test)" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/lm-fuzz-XXXXXX")
trap 'rm -rf "$W"' EXIT
CXX="clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address -I$SRC $(pkg-config --cflags ext2fs)"
PROFILE_SRCS="$SRC/profile/disk_image.cc $SRC/profile/partitions.cc"
FS_SRCS="$PROFILE_SRCS $SRC/profile/guest_fs.cc $SRC/profile/guest_ext.cc $SRC/profile/guest_ntfs.cc"
$CXX "$SRC/test/fuzz/fuzz_disk_image.cc" $PROFILE_SRCS -o "$W/fuzz_disk_image" -lz -lzstd
$CXX "$SRC/test/fuzz/fuzz_guest_fs.cc" $FS_SRCS -o "$W/fuzz_guest_fs" -lz -lzstd $(pkg-config --libs ext2fs com_err libntfs-3g)

# Seeds: small real images of every format the parsers read.
mkdir -p "$W/seeds/img" "$W/seeds/fs" "$W/tree"
echo hello >"$W/tree/a.txt"; mkdir "$W/tree/d"; echo deep >"$W/tree/d/b.txt"
mkfs.ext4 -q -d "$W/tree" -b 1024 -N 32 -O ^has_journal "$W/seeds/fs/ext4" 256K >/dev/null
truncate -s 1M "$W/seeds/fs/ntfs"
mkntfs -q -F -s 512 -c 512 "$W/seeds/fs/ntfs" >/dev/null 2>&1 || rm -f "$W/seeds/fs/ntfs"
python3 - "$W" <<'PY'
import struct, sys
w = sys.argv[1]
part = open(w + "/seeds/fs/ext4", "rb").read()
disk = bytearray(64 << 10) + bytearray(part)
disk[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 128, len(part) // 512)
disk[462:478] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x05, b"\0\0\0", 64, 32)
disk[510:512] = b"\x55\xaa"
open(w + "/seeds/img/mbr.raw", "wb").write(disk)
PY
for fmt in "qcow2" "qcow2 -c" "vmdk -o subformat=monolithicSparse" "vmdk -o subformat=streamOptimized"; do
  name=$(echo "$fmt" | tr -c 'a-z0-9' _)
  qemu-img convert -q -O $fmt "$W/seeds/img/mbr.raw" "$W/seeds/img/$name"
  qemu-img convert -q -O $fmt "$W/seeds/fs/ext4" "$W/seeds/fs/ext4-$name"
done
for t in disk_image guest_fs; do
  seeds="$W/seeds/img $SRC/test/fuzz/regressions"   # regressions: inputs that once crashed
  [ $t = guest_fs ] && seeds=$W/seeds/fs
  mkdir -p "$W/corpus-$t"
  echo "== fuzz_$t for ${SECS}s"
  ASAN_OPTIONS=detect_leaks=0 "$W/fuzz_$t" -max_total_time="$SECS" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -max_len=4194304 -timeout=10 -print_final_stats=1 "$W/corpus-$t" $seeds 2>"$W/$t.log" ||
    { tail -40 "$W/$t.log" >&2; echo "run_fuzz: fuzz_$t found a crash" >&2; exit 1; }
  grep -E 'stat::number_of_executed_units' "$W/$t.log" || true
done
echo "run_fuzz: no crashes"
