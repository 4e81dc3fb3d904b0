#!/usr/bin/env bash
# Store benchmark: backup, restore and verify --read-data of one disk image (half random,
# half compressible), livemount side by side with restic in the same run. Page cache is
# dropped before every timed step (when the kernel lets us).
#   tools/bench/store_bench.sh [SIZE_MIB=1024] [WORKDIR=/var/tmp/lm-bench]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-1024}
W=${2:-/var/tmp/lm-bench}
"$SRC/tools/install-deps.sh" build bench
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SRC/build" -j"$(nproc)" --target livemount >/dev/null
LM=$SRC/build/tools/livemount
rm -rf "$W" && mkdir -p "$W/vm"
python3 "$SRC/tools/bench/make_image.py" "$W/vm/disk.raw" "$MIB"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache

drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
timeit() {  # timeit VAR CMD...: seconds into VAR
  local var=$1; shift
  drop
  local t0 t1; t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  printf -v "$var" '%.2f' "$(echo "$t1 - $t0" | bc)"
}
mbs() { echo "scale=0; $MIB * 1.048576 / $1" | bc; }

"$LM" init "$W/lm-repo" --encryption none >/dev/null
timeit lm_backup "$LM" backup "$W/lm-repo" "$W/vm" --vm bench
timeit lm_restore "$LM" restore "$W/lm-repo" bench "$W/lm-out"
cmp "$W/vm/disk.raw" "$W/lm-out/disk.raw"
rm -rf "$W/lm-out"
timeit lm_restore_ns "$LM" restore "$W/lm-repo" bench "$W/lm-out" --no-sync
cmp "$W/vm/disk.raw" "$W/lm-out/disk.raw"
rm -rf "$W/lm-out"
# The limits: reading the image, and writing it durably, on this disk.
timeit read_limit cat "$W/vm/disk.raw"
timeit write_limit dd if="$W/vm/disk.raw" of="$W/copy" bs=4M conv=fsync
rm -f "$W/copy"
timeit lm_verify "$LM" verify "$W/lm-repo" --read-data
lm_size=$(du -sm "$W/lm-repo" | cut -f1)

restic init --repo "$W/restic-repo" >/dev/null 2>&1
timeit r_backup restic --repo "$W/restic-repo" backup "$W/vm/disk.raw"
timeit r_restore restic --repo "$W/restic-repo" restore latest --target "$W/restic-out"
cmp "$W/vm/disk.raw" "$W/restic-out/$W/vm/disk.raw"
rm -rf "$W/restic-out"
timeit r_restore_sync bash -c "restic --repo '$W/restic-repo' restore latest --target '$W/restic-out' && sync"
timeit r_verify restic --repo "$W/restic-repo" check --read-data
r_size=$(du -sm "$W/restic-repo" | cut -f1)

ratio() { echo "scale=1; $1 / $2" | bc; }
echo
echo "Image: $MIB MiB (half random, half text); $(nproc) cores; $(date -u +%Y-%m-%d)"
echo
echo "Limits on this disk: read $(mbs $read_limit) MB/s (cat), durable write $(mbs $write_limit) MB/s (dd conv=fsync)."
echo
echo "| step | livemount | restic | livemount / restic |"
echo "|---|---|---|---|"
echo "| backup | $(mbs $lm_backup) MB/s (${lm_backup} s) | $(mbs $r_backup) MB/s (${r_backup} s) | $(ratio $r_backup $lm_backup)x faster |"
echo "| restore, durable (fsync; restic + sync) | $(mbs $lm_restore) MB/s (${lm_restore} s) | $(mbs $r_restore_sync) MB/s (${r_restore_sync} s) | $(ratio $r_restore_sync $lm_restore)x faster |"
echo "| restore, page cache (--no-sync; restic as is) | $(mbs $lm_restore_ns) MB/s (${lm_restore_ns} s) | $(mbs $r_restore) MB/s (${r_restore} s) | $(ratio $r_restore $lm_restore_ns)x faster |"
echo "| verify --read-data / check --read-data | $(mbs $lm_verify) MB/s (${lm_verify} s) | $(mbs $r_verify) MB/s (${r_verify} s) | $(ratio $r_verify $lm_verify)x faster |"
echo "| stored size | ${lm_size} MiB | ${r_size} MiB | |"
rm -rf "$W"
