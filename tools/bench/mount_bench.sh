#!/usr/bin/env bash
# Mount benchmark: random 4 KiB reads at queue depth 1 and sequential 1 MiB reads of one
# 1 GiB image (half random, half text), through livemount cold (only in the repository) and
# warm (in the read-cache), as ratios to the same file read from local disk, side by side
# with `restic mount` of the same file in the same run. Page cache dropped before each case;
# O_DIRECT where the filesystem allows it. Beside each figure, the limit it is measured
# against: local disk; a local read plus FUSE's own round trip (the same reads of an all-zero
# file in the same backup copy, which the mount answers without touching its cache or the
# repository); and for cold reads, what the CPU allows (lm_limit_bench read: decompress and
# check one chunk per read).
#   tools/bench/mount_bench.sh [SIZE_MIB=1024] [WORKDIR=/var/tmp/lm-mbench]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-1024}
W=${2:-/var/tmp/lm-mbench}
export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache  # the chunk index of backup, restore, ...
RAND_IOS=${RAND_IOS:-3000}
"$SRC/tools/install-deps.sh" build bench
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SRC/build" -j"$(nproc)" --target livemount lm_limit_bench >/dev/null
LM=$SRC/build/tools/livemount
cleanup() {
  fusermount3 -u -z "$W/lm-mnt" 2>/dev/null || true
  fusermount3 -u -z "$W/restic-mnt" 2>/dev/null || true
  [ -n "${RESTIC_PID:-}" ] && kill "$RESTIC_PID" 2>/dev/null || true
  sleep 1
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W" && mkdir -p "$W/vm" "$W/lm-mnt" "$W/restic-mnt"
python3 "$SRC/tools/bench/make_image.py" "$W/vm/disk.raw" "$MIB"
truncate -s "${MIB}M" "$W/vm/zero.raw"  # all zero: stored as nothing, read as nothing
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache
"$LM" init "$W/lm-repo" --encryption none >/dev/null
"$LM" backup "$W/lm-repo" "$W/vm" --vm bench >/dev/null
restic init --repo "$W/restic-repo" >/dev/null 2>&1
restic --repo "$W/restic-repo" backup "$W/vm/disk.raw" >/dev/null 2>&1
read_us=$("$SRC/build/tools/lm_limit_bench" read "$W/vm/disk.raw" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_chunk"])')

drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# fio_run FILE rand|seq [BS] -> IOPS (rand) or MB/s (seq)
fio_run() {
  local file=$1 kind=$2 bs=${3:-4k} direct=1 out
  # Some FUSE filesystems refuse O_DIRECT; fall back to buffered reads there.
  if ! dd if="$file" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null; then direct=0; fi
  drop
  if [ "$kind" = rand ]; then
    out=$(fio --name=r --filename="$file" --readonly --rw=randread --bs="$bs" --iodepth=1 \
      --direct=$direct --number_ios="$RAND_IOS" --runtime=60 --time_based=0 --randseed=42 \
      --output-format=json)
    echo "$out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))'
  else
    out=$(fio --name=s --filename="$file" --readonly --rw=read --bs=1M --iodepth=1 \
      --direct=$direct --output-format=json)
    echo "$out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"]/1e6))'
  fi
}

max() { [ "$1" -ge "$2" ] && echo "$1" || echo "$2"; }
L=$W/vm/disk.raw
# A cold 4 KiB read waits for its whole chunk: a random 128 KiB read of the disk, measured
# before and after the cold random pass, the better kept.
local_rand_chunk=$(fio_run "$L" rand 128k)

lm_mount() {
  rm -rf "$W/lm-cache"
  "$LM" mount "$W/lm-repo" "$W/lm-mnt" --cache-dir "$W/lm-cache" --state-dir "$W/lm-state" \
    --cache-size 4G >/dev/null
}
LMF=$W/lm-mnt/bench/latest/disk.raw
ZF=$W/lm-mnt/bench/latest/zero.raw
lm_mount; lm_cold_rand=$(fio_run "$LMF" rand); "$LM" umount "$W/lm-mnt" >/dev/null
local_rand_chunk=$(max "$local_rand_chunk" "$(fio_run "$L" rand 128k)")
lm_mount; lm_cold_seq=$(fio_run "$LMF" seq)  # fills the read-cache
# Warm cases, each beside its limits: this disk's speed swings threefold within minutes, so
# local disk, livemount warm and FUSE alone (an all-zero file of the same copy, answered
# without the cache or the repository) take turns, three rounds, the best of each kept.
local_rand=0 local_seq=0 lm_warm_rand=0 lm_warm_seq=0 fuse_rand=0 fuse_seq=0
for _ in 1 2 3; do
  local_rand=$(max "$local_rand" "$(fio_run "$L" rand)")
  lm_warm_rand=$(max "$lm_warm_rand" "$(fio_run "$LMF" rand)")
  fuse_rand=$(max "$fuse_rand" "$(fio_run "$ZF" rand)")
  local_seq=$(max "$local_seq" "$(fio_run "$L" seq)")
  lm_warm_seq=$(max "$lm_warm_seq" "$(fio_run "$LMF" seq)")
  fuse_seq=$(max "$fuse_seq" "$(fio_run "$ZF" seq)")
done
fetched=$("$LM" stats "$W/lm-mnt" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["repo"]["chunks_fetched"])')
"$LM" umount "$W/lm-mnt" >/dev/null

restic --repo "$W/restic-repo" mount "$W/restic-mnt" >/dev/null 2>&1 & RESTIC_PID=$!
for _ in $(seq 100); do [ -d "$W/restic-mnt/snapshots/latest" ] && break; sleep 0.2; done
RF=$W/restic-mnt/snapshots/latest$W/vm/disk.raw
r_rand=$(fio_run "$RF" rand)
r_seq=$(fio_run "$RF" seq)
kill "$RESTIC_PID"; wait "$RESTIC_PID" 2>/dev/null || true; RESTIC_PID=

r() { echo "scale=2; $1 / $2" | bc; }
# A local read followed by a FUSE round trip: what any FUSE filesystem serving this disk can
# reach at queue depth 1.
serial() { printf '%.0f' "$(echo "1 / (1 / $1 + 1 / $2)" | bc -l)"; }
# Sequential reads overlap (kernel read-ahead, asynchronous FUSE requests): the slower of
# the two is the limit there.
slower() { [ "$1" -le "$2" ] && echo "$1" || echo "$2"; }
warm_rand_limit=$(serial "$local_rand" "$fuse_rand")
warm_seq_limit=$(slower "$local_seq" "$fuse_seq")
# A cold read, one after the other: the chunk's disk read, its decompression and check, and
# the FUSE round trip.
cold_rand_limit=$(printf '%.0f' "$(echo "1 / (1 / $local_rand_chunk + $read_us / 1000000 + 1 / $fuse_rand)" | bc -l)")
cold_cpu_limit=$(printf '%.0f' "$(echo "1000000 / $read_us" | bc -l)")
echo
echo "Image: $MIB MiB (half random, half text); $(nproc) cores; $(date -u +%Y-%m-%d); random reads: $RAND_IOS per case;"
echo "warm and local cases: the best of three alternating rounds"
echo
echo "| case | random 4 KiB QD1 | vs local | sequential 1 MiB | vs local |"
echo "|---|---|---|---|---|"
echo "| local disk (the limit) | $local_rand IOPS | 1.00x | $local_seq MB/s | 1.00x |"
echo "| livemount warm (read-cache) | $lm_warm_rand IOPS | $(r $lm_warm_rand $local_rand)x | $lm_warm_seq MB/s | $(r $lm_warm_seq $local_seq)x |"
echo "| livemount cold (repository) | $lm_cold_rand IOPS | $(r $lm_cold_rand $local_rand)x | $lm_cold_seq MB/s | $(r $lm_cold_seq $local_seq)x |"
echo "| restic mount | $r_rand IOPS | $(r $r_rand $local_rand)x | $r_seq MB/s | $(r $r_seq $local_seq)x |"
echo
echo "Against the limits (same run):"
echo
echo "| case | livemount | the limit | livemount / limit |"
echo "|---|---|---|---|"
echo "| warm random 4 KiB | $lm_warm_rand IOPS | $warm_rand_limit IOPS (a local read, $local_rand IOPS, plus a FUSE round trip, $fuse_rand IOPS on an all-zero file) | $(r $lm_warm_rand $warm_rand_limit)x |"
echo "| warm sequential 1 MiB | $lm_warm_seq MB/s | $warm_seq_limit MB/s (the slower of local, $local_seq MB/s, and FUSE, $fuse_seq MB/s on an all-zero file) | $(r $lm_warm_seq $warm_seq_limit)x |"
echo "| cold random 4 KiB | $lm_cold_rand IOPS | $cold_rand_limit IOPS (one after the other: a random 128 KiB disk read, $local_rand_chunk IOPS; decompress and check the chunk, $read_us us; a FUSE round trip) | $(r $lm_cold_rand $cold_rand_limit)x |"
echo "| cold random 4 KiB, CPU alone | $lm_cold_rand IOPS | $cold_cpu_limit IOPS (decompress and check a chunk, with a disk that answered at once) | $(r $lm_cold_rand $cold_cpu_limit)x |"
echo
echo "livemount cold / restic mount: random $(r $lm_cold_rand $r_rand)x, sequential $(r $lm_cold_seq $r_seq)x"
echo "repository chunks fetched during the warm cases: $(( fetched - $(echo "$MIB * 8" | bc) )) (should be 0)"
