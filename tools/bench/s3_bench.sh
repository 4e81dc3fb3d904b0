#!/usr/bin/env bash
# Object-store benchmark on a real Ceph RGW (started here, stopped at the end):
#  1. backup and restore of one disk image, livemount (encrypted) against restic's S3
#     backend on the same RGW, two alternating rounds, the faster of each;
#  2. through a latency-injecting proxy at 0, 20 and 50 ms per request: a cold sequential
#     read of the disk through the live mount, against `restic mount` of the same image in
#     a restic repository on the same RGW, and a pre-stage of the whole disk (--all), with
#     the local read of the same image as the limit.
#   tools/bench/s3_bench.sh [SIZE_MIB=1024] [WORKDIR=/var/tmp/lm-s3-bench] [READ_MIB=256]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-1024}
W=${2:-/var/tmp/lm-s3-bench}
READ_MIB=${3:-256}
"$SRC/tools/install-deps.sh" build bench s3
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SRC/build" -j"$(nproc)" --target livemount >/dev/null
LM=$SRC/build/tools/livemount
CLUSTER="bash $SRC/test/integration/ceph/cluster.sh"
rm -rf "$W" && mkdir -p "$W/vm" "$W/small"
PIDS=()
finish() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for m in "$W"/mnt-*; do [ -d "$m" ] && { "$LM" umount "$m" >/dev/null 2>&1 || fusermount3 -u -z "$m" 2>/dev/null || true; }; done
  $CLUSTER stop "$W/ceph" || true
}
trap finish EXIT
$CLUSTER start "$W/ceph"
source "$W/ceph/s3.env"
python3 "$SRC/tools/bench/make_image.py" "$W/vm/disk.raw" "$MIB"
python3 "$SRC/tools/bench/make_image.py" "$W/small/disk.raw" "$READ_MIB"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache LIVEMOUNT_PASSWORD=bench

drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
timeit() {  # timeit VAR CMD...: seconds into VAR
  local var=$1; shift
  drop
  local t0 t1; t0=$(date +%s.%N)
  "$@" >"$W/out" 2>"$W/err" || { cat "$W/err" >&2; return 1; }
  t1=$(date +%s.%N)
  printf -v "$var" '%.2f' "$(echo "$t1 - $t0" | bc)"
}
mbs() { echo "scale=0; $2 * 1.048576 / $1" | bc; }
min() { if (( $(echo "$1 < $2" | bc) )); then echo "$1"; else echo "$2"; fi; }

# 1. backup and restore against restic, same RGW, alternating rounds.
lm_b=999999 lm_r=999999 r_b=999999 r_r=999999
for round in 1 2; do
  repo=s3:$LM_S3_ENDPOINT/lm-bench-$round
  "$LM" init "$repo" >/dev/null 2>&1
  timeit t "$LM" backup "$repo" "$W/vm" --vm bench; lm_b=$(min "$lm_b" "$t")
  timeit t "$LM" restore "$repo" bench "$W/lm-out" --no-sync; lm_r=$(min "$lm_r" "$t")
  cmp "$W/vm/disk.raw" "$W/lm-out/disk.raw"; rm -rf "$W/lm-out"
  rrepo=s3:$LM_S3_ENDPOINT/restic-bench-$round
  restic -r "$rrepo" init >/dev/null 2>&1
  timeit t restic -r "$rrepo" backup "$W/vm/disk.raw"; r_b=$(min "$r_b" "$t")
  timeit t restic -r "$rrepo" restore latest --target "$W/r-out"; r_r=$(min "$r_r" "$t")
  cmp "$W/vm/disk.raw" "$W/r-out/$W/vm/disk.raw"; rm -rf "$W/r-out"
done

# 2. the live mount through the latency proxy.
repo=s3:$LM_S3_ENDPOINT/lm-read
"$LM" init "$repo" >/dev/null 2>&1
"$LM" backup "$repo" "$W/small" --vm small >/dev/null
restic -r "s3:$LM_S3_ENDPOINT/restic-read" init >/dev/null 2>&1
restic -r "s3:$LM_S3_ENDPOINT/restic-read" backup "$W/small/disk.raw" >/dev/null 2>&1
timeit local_read cat "$W/small/disk.raw"
port=${LM_S3_ENDPOINT##*:}
declare -A cold prestage rcold
for ms in 0 20 50; do
  pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 "$SRC/tools/bench/latency_proxy.py" "$pport" "127.0.0.1:$port" "$ms" >"$W/proxy.out" &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q ready "$W/proxy.out" && break; sleep 0.1; done
  via=s3:http://127.0.0.1:$pport/lm-read
  mkdir -p "$W/mnt-$ms"
  "$LM" mount "$via" "$W/mnt-$ms" --cache-dir "$W/cache-$ms" --state-dir "$W/state-$ms" >/dev/null
  timeit t cat "$W/mnt-$ms/small/latest/disk.raw"; cold[$ms]=$t
  "$LM" umount "$W/mnt-$ms" >/dev/null
  rm -rf "$W/cache-$ms" "$W/state-$ms"
  "$LM" mount "$via" "$W/mnt-$ms" --cache-dir "$W/cache-$ms" --state-dir "$W/state-$ms" >/dev/null
  timeit t "$LM" prestage "$via" small --all --mount "$W/mnt-$ms" --threads 16 --state-dir "$W/state-$ms"
  prestage[$ms]=$t
  "$LM" umount "$W/mnt-$ms" >/dev/null
  rm -rf "$W/cache-$ms" "$W/state-$ms"
  # restic mount of the same image through the same proxy, its cache empty.
  mkdir -p "$W/mnt-restic"
  rm -rf "$W/restic-cache"
  restic -r "s3:http://127.0.0.1:$pport/restic-read" mount "$W/mnt-restic" >"$W/restic-mount.out" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do [ -d "$W/mnt-restic/snapshots/latest" ] && break; sleep 0.1; done
  timeit t cat "$W/mnt-restic/snapshots/latest$W/small/disk.raw"; rcold[$ms]=$t
  kill -INT "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
  fusermount3 -u -z "$W/mnt-restic" 2>/dev/null || true
  kill "${PIDS[-2]}"
done

echo
echo "Image: $MIB MiB (half random, half text); $(nproc) cores; Ceph $(ceph --version | awk '{print $3}') RGW on this host; $(date -u +%Y-%m-%d)"
echo
echo "| step | livemount (encrypted) | restic (S3 backend) | livemount / restic |"
echo "|---|---|---|---|"
echo "| backup | $(mbs $lm_b $MIB) MB/s ($lm_b s) | $(mbs $r_b $MIB) MB/s ($r_b s) | $(echo "scale=1; $r_b / $lm_b" | bc)x faster |"
echo "| restore (page cache) | $(mbs $lm_r $MIB) MB/s ($lm_r s) | $(mbs $r_r $MIB) MB/s ($r_r s) | $(echo "scale=1; $r_r / $lm_r" | bc)x faster |"
echo
echo "Through the latency proxy ($READ_MIB MiB image; local read $(mbs $local_read $READ_MIB) MB/s):"
echo
echo "| added latency | livemount cold sequential read | restic mount cold read | livemount / restic | prestage --all (16 threads) |"
echo "|---|---|---|---|---|"
for ms in 0 20 50; do
  echo "| $ms ms | $(mbs ${cold[$ms]} $READ_MIB) MB/s (${cold[$ms]} s) | $(mbs ${rcold[$ms]} $READ_MIB) MB/s (${rcold[$ms]} s) | $(echo "scale=1; ${rcold[$ms]} / ${cold[$ms]}" | bc)x | $(mbs ${prestage[$ms]} $READ_MIB) MB/s (${prestage[$ms]} s) |"
done
