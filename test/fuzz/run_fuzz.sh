#!/usr/bin/env bash
# Builds the parsers' fuzz targets with clang's libFuzzer (and AddressSanitizer) and runs
# each briefly from a seed corpus of real images: qcow2 (plain and compressed), VMDK sparse
# and stream, MBR and GPT disks, ext4 and NTFS filesystems; and a real repository's config,
# manifests, chunk lists, packs and index files, a profile, a trace and control replies.
#   test/fuzz/run_fuzz.sh [SECONDS_PER_TARGET=15]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-15}
command -v clang++ >/dev/null || { echo "run_fuzz: clang++ is not installed (tools/install-deps.sh test)" >&2; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/lm-fuzz-XXXXXX")
trap 'rm -rf "$W"' EXIT
CXX="clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address -I$SRC $(pkg-config --cflags ext2fs)"
PROFILE_SRCS="$SRC/guest/disk_image.cc $SRC/guest/partitions.cc"
FS_SRCS="$PROFILE_SRCS $SRC/guest/filesystem.cc $SRC/guest/ext.cc $SRC/guest/ntfs.cc"
# The three targets build side by side (clang with ASan is most of this test's time).
$CXX "$SRC/test/fuzz/fuzz_disk_image.cc" $PROFILE_SRCS -o "$W/fuzz_disk_image" -lz -lzstd &
b1=$!
$CXX "$SRC/test/fuzz/fuzz_guest_fs.cc" $FS_SRCS -o "$W/fuzz_guest_fs" -lz -lzstd $(pkg-config --libs ext2fs com_err libntfs-3g) &
b2=$!
STORE_SRCS="$(ls "$SRC"/base/*.cc "$SRC"/store/backend/*.cc "$SRC"/store/backend/s3/*.cc "$SRC"/store/crypto/*.cc) $(ls "$SRC"/store/*.cc | grep -vE '/(backup|restore|verify)\.cc$')"
$CXX $(pkg-config --cflags libxml-2.0) "$SRC/test/fuzz/fuzz_repo_formats.cc" $STORE_SRCS "$SRC/profile/profile.cc" \
  "$SRC/agent/control_protocol.cc" -o "$W/fuzz_repo_formats" -lzstd -lxxhash -lcrypto \
  $(pkg-config --libs libcurl libxml-2.0)
wait $b1 && wait $b2

# Seeds of the repository formats: a real repository, profile, trace and control replies,
# each prefixed with the byte that picks its parser.
seed() {  # seed SELECTOR FILE NAME
  mkdir -p "$W/seeds/repo"
  { printf "\\x$(printf %02x "$1")"; cat "$2"; } >"$W/seeds/repo/$3"
}
LMBIN=${LM_BIN:-$SRC/build/tools/livemount}
export LIVEMOUNT_CACHE_DIR=$W/cache  # the backup's chunk index: nothing outside $W
if [ -x "$LMBIN" ]; then
  mkdir -p "$W/vm/sub" && head -c 300000 /dev/urandom >"$W/vm/disk.raw" && echo cfg >"$W/vm/sub/vm.vmx"
  ln -s disk.raw "$W/vm/link"
  "$LMBIN" init "$W/repo" --encryption none --chunk-size 64K >/dev/null && "$LMBIN" backup "$W/repo" "$W/vm" --vm v >/dev/null
  "$LMBIN" profile export "$W/repo" v "$W/profile.json" --state-dir "$W/state" >/dev/null
  seed 0 "$W/repo/config" config
  for f in "$W"/repo/backups/v/*/backup.json; do seed 1 "$f" manifest; done
  for f in "$W"/repo/backups/v/*/files/*.fidx; do seed 2 "$f" "fidx-$(basename "$f")"; done
  for f in "$W"/repo/packs/*/*.pack; do seed 3 "$f" pack; done
  for f in "$W"/repo/index/*.idx; do seed 4 "$f" idx; done
  seed 5 "$W/profile.json" profile
  echo fuzz-password >"$W/pw"
  LIVEMOUNT_PASSWORD_FILE="$W/pw" "$LMBIN" init "$W/encrypted" --chunk-size 64K >/dev/null
  for f in "$W"/encrypted/keys/*; do seed 9 "$f" key; done
  seed 0 "$W/encrypted/config" config-encrypted
fi
printf '{"format":"livemount-trace","version":1,"vm":"v","backup":"b","chunk_size":4096,"touches":[["disk.raw",1,2],[{"hex":"ff"},3,4]]}' >"$W/trace.json"
seed 6 "$W/trace.json" trace
printf '{"cache":{"hits":1},"overlays":[],"export":null,"backup":"v@1"}' >"$W/reply.json"
seed 7 "$W/reply.json" reply
printf '{"error":"busy","code":6}' >"$W/error.json"
seed 7 "$W/error.json" error-reply
printf '{"cmd":"prestage","backup":"v@1","profile":"","all":false,"pin_until":0}' >"$W/request.json"
seed 7 "$W/request.json" request
printf '{"format":"livemount-lease","host":"h","pid":1,"pid_start":2,"renewed_ns":3,"ttl_s":900,"holds":[{"backup":"v@1","why":["open files"]}]}' >"$W/lease.json"
seed 8 "$W/lease.json" lease
printf '<?xml version="1.0"?><ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken><Contents><Key>p/a</Key><LastModified>2026-11-26T13:45:12.000Z</LastModified><Size>4</Size></Contents></ListBucketResult>' >"$W/list.xml"
seed 11 "$W/list.xml" s3-list
printf '<Error><Code>NoSuchKey</Code><Message>m</Message></Error>' >"$W/error.xml"
seed 11 "$W/error.xml" s3-error

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
for t in disk_image guest_fs repo_formats; do
  seeds="$W/seeds/img $SRC/test/fuzz/regressions"   # regressions: inputs that once crashed
  [ $t = guest_fs ] && seeds=$W/seeds/fs
  [ $t = repo_formats ] && seeds=$W/seeds/repo
  mkdir -p "$W/corpus-$t"
  echo "== fuzz_$t for ${SECS}s"
  ASAN_OPTIONS=detect_leaks=0 "$W/fuzz_$t" -max_total_time="$SECS" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -max_len=4194304 -timeout=10 -print_final_stats=1 "$W/corpus-$t" $seeds 2>"$W/$t.log" ||
    { tail -40 "$W/$t.log" >&2; echo "run_fuzz: fuzz_$t found a crash" >&2; exit 1; }
  grep -E 'stat::number_of_executed_units' "$W/$t.log" || true
done
echo "run_fuzz: no crashes"
