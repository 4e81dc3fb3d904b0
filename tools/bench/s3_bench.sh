#!/usr/bin/env bash
# Object-store benchmark on a real Ceph RGW (started here, stopped at the end):
#  1. backup and restore of one disk image, livemount (encrypted) against restic's S3
#     backend on the same RGW, two alternating rounds, the faster of each;
#  2. through a latency-injecting proxy at 0, 20 and 50 ms per request: a cold sequential
#     read of the disk through the live mount, against `restic mount` of the same image in
#     a restic repository on the same RGW, and a pre-stage of the whole disk (--all), with
#     the local read of the same image as the limit;
#  3. the recorded read trace of a real boot of the sample VM from the mount, replayed
#     through the proxy at 20 and 50 ms: cold, after a pre-stage from the learned profile,
#     and with `mount --prestage` (the replay starting at once), against the local files.
#   tools/bench/s3_bench.sh [SIZE_MIB=1024] [WORKDIR=/var/tmp/lm-s3-bench] [READ_MIB=256]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-1024}
W=${2:-/var/tmp/lm-s3-bench}
export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache  # the chunk index of backup, restore, ...
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

# 3. the sample VM's boot trace, replayed through the proxy.
"$SRC/tools/make-sample-vm.sh" "$W/sample" --flavour kvm --name sample >/dev/null
brepo=s3:$LM_S3_ENDPOINT/lm-boot
"$LM" init "$brepo" >/dev/null 2>&1
"$LM" backup "$brepo" "$W/sample" --vm sample >/dev/null
mkdir -p "$W/mnt-rec"
"$LM" mount "$brepo" "$W/mnt-rec" --cache-dir "$W/c-rec" --state-dir "$W/st" --record-reads "$W/boot.reads" >/dev/null
"$SRC/tools/boot-sample-vm.sh" "$W/mnt-rec/sample/latest/sample.qcow2" -snapshot >/dev/null
"$LM" umount "$W/mnt-rec" >/dev/null
"$LM" profile learn sample --state-dir "$W/st" >/dev/null
trace_reads=$(wc -l <"$W/boot.reads")
trace_mib=$(awk '{s+=$3} END {printf "%.0f", s / 1048576}' "$W/boot.reads")
replay_local=$(python3 "$SRC/tools/bench/replay.py" "$W/boot.reads" local "$W/sample")
declare -A rp
for ms in 20 50; do
  pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 "$SRC/tools/bench/latency_proxy.py" "$pport" "127.0.0.1:$port" "$ms" >"$W/proxy.out" &
  PIDS+=($!)
  for _ in $(seq 50); do grep -q ready "$W/proxy.out" && break; sleep 0.1; done
  via=s3:http://127.0.0.1:$pport/lm-boot
  m=$W/mnt-boot
  mkdir -p "$m"
  replay() { REPEAT=1 python3 "$SRC/tools/bench/replay.py" "$W/boot.reads" mount "$m"; }
  rm -rf "$W/c-b"; "$LM" mount "$via" "$m" --cache-dir "$W/c-b" --state-dir "$W/st" --readahead 0 >/dev/null
  rp[cold$ms]=$(replay); "$LM" umount "$m" >/dev/null
  rm -rf "$W/c-b"; "$LM" mount "$via" "$m" --cache-dir "$W/c-b" --state-dir "$W/st" --readahead 0 >/dev/null
  timeit t "$LM" prestage "$via" sample --mount "$m" --state-dir "$W/st"; rp[pre$ms]=$t
  rp[after$ms]=$(replay); "$LM" umount "$m" >/dev/null
  rm -rf "$W/c-b"; drop
  t0=$(date +%s.%N)
  "$LM" mount "$via" "$m" --cache-dir "$W/c-b" --state-dir "$W/st" --readahead 0 --prestage sample >/dev/null
  replay >/dev/null
  rp[during$ms]=$(printf '%.3f' "$(echo "$(date +%s.%N) - $t0" | bc)")
  "$LM" umount "$m" >/dev/null
  kill "${PIDS[-1]}"
done
ratio() { echo "scale=2; $1 / $replay_local" | bc; }

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
echo
echo "Boot trace of the sample VM ($trace_reads reads, $trace_mib MiB), replayed with O_DIRECT; local files $replay_local s:"
echo
echo "| replay | 20 ms | 50 ms |"
echo "|---|---|---|"
echo "| cold live mount | ${rp[cold20]} s ($(ratio ${rp[cold20]})x) | ${rp[cold50]} s ($(ratio ${rp[cold50]})x) |"
echo "| pre-staged (prestage took ${rp[pre20]} s / ${rp[pre50]} s) | ${rp[after20]} s ($(ratio ${rp[after20]})x) | ${rp[after50]} s ($(ratio ${rp[after50]})x) |"
echo "| mount --prestage, replay at once (from mount) | ${rp[during20]} s ($(ratio ${rp[during20]})x) | ${rp[during50]} s ($(ratio ${rp[during50]})x) |"
