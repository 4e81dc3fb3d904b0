#!/usr/bin/env bash
# Boot benchmark (issue 5): records the reads of a real boot of the sample VM from the
# mount, learns its profile, then
#  1. replays that trace (same files, offsets, lengths, order; O_DIRECT) against (a) the
#     original files on local disk, (b) the mount with an empty cache, (c) the mount after
#     prestage, with the repository behind a simulated latency of 0 and 10 ms per chunk;
#  2. times real boots, from `livemount mount` to the guest's last line: (a) from local
#     files, (b) a cold live mount, (c) prestage then live mount, (d) full restore then boot.
#   tools/bench/boot_bench.sh [WORKDIR=/var/tmp/lm-bbench]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/var/tmp/lm-bbench}
"$SRC/tools/install-deps.sh" build demo
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SRC/build" -j"$(nproc)" --target livemount >/dev/null
LM=$SRC/build/tools/livemount
BOOT=$SRC/tools/boot-sample-vm.sh
trap 'fusermount3 -u -z "$W/mnt" 2>/dev/null || true' EXIT
fusermount3 -u -z "$W/mnt" 2>/dev/null || true
rm -rf "$W" && mkdir -p "$W/mnt" && cd "$W"
"$SRC/tools/make-sample-vm.sh" vm --flavour kvm --name sample >/dev/null
"$LM" init repo --encryption none >/dev/null
"$LM" backup repo vm --vm sample >/dev/null
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
secs() { printf '%.2f' "$(echo "$2 - $1" | bc)"; }
fetched() { "$LM" stats mnt --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["repo"]["chunks_fetched"])'; }
mnt() {  # mnt CACHE LATENCY [options]
  local cache=$1 lat=$2; shift 2
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" mount repo mnt --cache-dir "$W/$cache" --state-dir "$W/state" "$@" >/dev/null
}

# Record a real boot (cold), and learn the profile from it.
mnt rec 0 --record-reads "$W/boot.reads"
"$BOOT" mnt/sample/latest/sample.qcow2 -snapshot >/dev/null
"$LM" umount mnt >/dev/null
"$LM" profile learn sample --state-dir "$W/state" >/dev/null
reads=$(wc -l <boot.reads)
bytes=$(awk '{s+=$3} END {print s}' boot.reads)

echo
echo "Boot read trace: $reads reads, $((bytes >> 20)) MiB, recorded from a real boot of the sample VM ($(date -u +%Y-%m-%d), $(nproc) cores)."
echo
echo "Replays are the median of 5 runs (page cache dropped before each), but the empty-cache"
echo "case, which is played once."
echo
echo "| replay | latency | seconds | vs local | repository chunks read |"
echo "|---|---|---|---|---|"
drop
local_s=$(python3 "$SRC/tools/bench/replay.py" boot.reads local vm)
echo "| (a) local files | - | $local_s | 1.00x | - |"
for lat in 0 10; do
  # The empty-cache case is played once: a second pass would find the cache warm.
  rm -rf "$W/c-cold"; mnt c-cold "$lat" --readahead 0; drop
  s=$(REPEAT=1 python3 "$SRC/tools/bench/replay.py" boot.reads mount mnt); f=$(fetched)
  "$LM" umount mnt >/dev/null
  echo "| (b) mount, empty cache | $lat ms | $s | $(echo "scale=2; $s / $local_s" | bc)x | $f |"
  rm -rf "$W/c-pre"
  t0=$(now)
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" prestage repo sample --cache-dir "$W/c-pre" --state-dir "$W/state" --threads 8 >pre.out
  t1=$(now)
  mnt c-pre "$lat" --readahead 0; drop
  before=$(fetched)
  s=$(python3 "$SRC/tools/bench/replay.py" boot.reads mount mnt); f=$(( $(fetched) - before ))
  "$LM" umount mnt >/dev/null
  echo "| (c) mount after prestage | $lat ms | $s | $(echo "scale=2; $s / $local_s" | bc)x | $f |"
  pre_mb=$(python3 -c "import re,sys; t=open('pre.out').read(); m=re.search(r'\(([0-9.]+) MiB\)', t); print(m.group(1) if m else '?')")
  prestage_note[$lat]="prestage at $lat ms: $pre_mb MiB in $(secs "$t0" "$t1") s"
done
echo
echo "${prestage_note[0]}; ${prestage_note[10]} (8 parallel fetches)."

echo
echo "| real boot, mount to the guest's last line | 0 ms | 10 ms |"
echo "|---|---|---|"
declare -A T
for lat in 0 10; do
  drop; t0=$(now); "$BOOT" vm/sample.qcow2 -snapshot >/dev/null; T[a$lat]=$(secs "$t0" "$(now)")
  rm -rf "$W/c1"; drop; t0=$(now); mnt c1 "$lat"; "$BOOT" mnt/sample/latest/sample.qcow2 -snapshot >/dev/null
  T[b$lat]=$(secs "$t0" "$(now)"); "$LM" umount mnt >/dev/null
  rm -rf "$W/c2"; drop; t0=$(now)
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" prestage repo sample --cache-dir "$W/c2" --state-dir "$W/state" --threads 8 >/dev/null
  mnt c2 "$lat"; "$BOOT" mnt/sample/latest/sample.qcow2 -snapshot >/dev/null
  T[c$lat]=$(secs "$t0" "$(now)"); "$LM" umount mnt >/dev/null
  rm -rf restored; drop; t0=$(now)
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" restore repo sample restored >/dev/null
  "$BOOT" restored/sample.qcow2 -snapshot >/dev/null; T[d$lat]=$(secs "$t0" "$(now)")
done
echo "| (a) boot from local files | ${T[a0]} s | ${T[a10]} s |"
echo "| (b) cold live mount | ${T[b0]} s | ${T[b10]} s |"
echo "| (c) prestage, then live mount | ${T[c0]} s | ${T[c10]} s |"
echo "| (d) full restore, then boot | ${T[d0]} s | ${T[d10]} s |"
