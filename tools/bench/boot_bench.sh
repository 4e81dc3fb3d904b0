#!/usr/bin/env bash
# Time to a working VM (issue 15), on the real Debian guest (make-sample-vm.sh --distro
# debian: systemd, an application that reads APP_MIB at start, a DATA_SIZE data disk).
# Records the reads of a real boot from a cold mount (--record-reads), learns the profile,
# then at each simulated repository latency (LIVEMOUNT_REPO_LATENCY_MS, per pack read):
#  1. replays the trace at full speed, as a KVM guest would issue it (O_DIRECT, aligned):
#     (a) local files, (b) cold mount, (c) mount after prestage (prestage time apart),
#     (d) `mount --prestage` with the replay started at once, (e) restore, then replay;
#  2. with BOOTS=1 (default), real TCG boots timed to the application-ready line, for the
#     same five cases.
# Needs about 3.5x DATA_SIZE of free disk at its peak (the VM, its repository, a restore).
#   tools/bench/boot_bench.sh [WORKDIR=/var/tmp/lm-bbench]
#   env: DATA_SIZE=16G APP_MIB=256 LATENCIES="0 10 40" BOOTS=1 BOOT_LATENCIES=$LATENCIES BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/var/tmp/lm-bbench}
export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache  # the chunk index of backup, restore, ...
DATA_SIZE=${DATA_SIZE:-16G}
APP_MIB=${APP_MIB:-256}
LATENCIES=${LATENCIES:-0 10 40}
BOOT_LATENCIES=${BOOT_LATENCIES:-$LATENCIES}
source "$SRC/tools/bench/lib.sh"
bench_build build demo guest
BOOT=$SRC/tools/boot-sample-vm.sh
REPLAY=$SRC/tools/bench/replay.py
trap 'fusermount3 -u -z "$W/mnt" 2>/dev/null || true' EXIT
fusermount3 -u -z "$W/mnt" 2>/dev/null || true
rm -rf "$W" && mkdir -p "$W/mnt" && cd "$W"
export LIVEMOUNT_DEBIAN_ROOTFS=${LIVEMOUNT_DEBIAN_ROOTFS:-$W.rootfs}  # kept between runs
"$SRC/tools/make-sample-vm.sh" vm --distro debian --name deb --app-mib "$APP_MIB" --data-size "$DATA_SIZE" 2>/dev/null
"$LM" init repo --encryption none >/dev/null 2>&1
"$LM" backup repo vm --vm deb >backup.out 2>&1
DISKS=(deb.qcow2 deb-data.qcow2)
on() { local d=$1; shift; for f in "${DISKS[@]}"; do echo "$d/$f"; done; }
ratio() { printf '%.2fx' "$(echo "scale=4; $1 / $2" | bc)"; }
mnt() {  # mnt CACHE LATENCY [options]
  local cache=$1 lat=$2; shift 2
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" mount repo mnt --cache-dir "$W/$cache" --state-dir "$W/state" "$@" >/dev/null
}
umnt() { "$LM" umount mnt >/dev/null; }
prestage() {  # prestage CACHE LATENCY: prints seconds
  local t0; t0=$(now)
  LIVEMOUNT_REPO_LATENCY_MS=$2 "$LM" prestage repo deb --cache-dir "$W/$1" --state-dir "$W/state" >pre.out
  secs "$t0" "$(now)"
}
restore() {  # restore LATENCY: prints seconds
  local t0; rm -rf restored; drop; t0=$(now)
  LIVEMOUNT_REPO_LATENCY_MS=$1 "$LM" restore repo deb restored >/dev/null
  secs "$t0" "$(now)"
}
# A real boot; prints the seconds from $1 (a start time) to the application-ready line.
boot() {
  local t0=$1 dir=$2; shift 2
  "$BOOT" $(on "$dir") "$@" | while IFS= read -r line; do
    case "$line" in *"app ready"*) now >"$W/ready" ;; esac
  done
  [ -s "$W/ready" ] || { echo "boot_bench: no application-ready line" >&2; exit 1; }
  secs "$t0" "$(cat "$W/ready")"; rm -f "$W/ready"
}

# Record a real boot (cold), and learn the profile from it.
mnt rec 0 --record-reads "$W/boot.reads"
"$BOOT" $(on mnt/deb/latest) -snapshot >record.out
umnt
"$LM" profile learn deb --state-dir "$W/state" >/dev/null
reads=$(wc -l <boot.reads)
mib=$(awk '{s+=$3} END {printf "%d", s / 1048576}' boot.reads)
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')

echo "Real guest: Debian 12 (systemd), application $APP_MIB MiB, data disk $DATA_SIZE; $(grep -o '[0-9.]* GiB read' backup.out || true) at backup."
echo "Boot read trace: $reads reads, $mib MiB, recorded from a real boot ($(date -u +%Y-%m-%d), $(nproc) cores, $cpu)."
echo
echo "### Replayed boot (full speed, O_DIRECT)"
echo
echo "Median of 5 runs, page cache dropped before each; the empty-cache and --prestage cases,"
echo "which change the cache, are played once. Repository chunks: fetched during the replay."
echo
echo "| latency | (a) local | (b) cold | (c) pre-staged | prestage | (d) mount --prestage | (c) prestage + replay | (e) restore + replay | (e) / (d) |"
echo "|---|---|---|---|---|---|---|---|---|"
drop
local_s=$(python3 "$REPLAY" boot.reads local vm)
for lat in $LATENCIES; do
  rm -rf c-cold; mnt c-cold "$lat" --readahead 0; drop
  b=$(REPEAT=1 python3 "$REPLAY" boot.reads mount mnt); bf=$(fetched); umnt
  rm -rf c-pre; p=$(prestage c-pre "$lat")
  mnt c-pre "$lat" --readahead 0; drop; before=$(fetched)
  c=$(python3 "$REPLAY" boot.reads mount mnt); cf=$(( $(fetched) - before )); umnt
  rm -rf c-d; drop; t0=$(now)
  mnt c-d "$lat" --prestage deb@latest
  REPEAT=1 python3 "$REPLAY" boot.reads mount mnt >/dev/null; d=$(secs "$t0" "$(now)"); umnt
  e=$(restore "$lat")
  drop; el=$(python3 "$REPLAY" boot.reads local restored)
  cp_s=$(echo "$p + $c" | bc); e_s=$(echo "$e + $el" | bc)
  echo "| $lat ms | $local_s s | $b s ($(ratio "$b" "$local_s"), $bf chunks) | $c s ($(ratio "$c" "$local_s"), $cf chunks) | $p s | $d s | $cp_s s | $e_s s | $(ratio "$e_s" "$d") |"
done
echo
grep -o "prestage.*" pre.out | head -1 | sed 's/^/Last prestage: /'

[ "${BOOTS:-1}" = 1 ] || exit 0
echo
echo "### Real boots under TCG, start to the application-ready line"
echo
echo "| latency | (a) local | (b) cold mount | (c) prestage, then mount and boot | (d) mount --prestage, boot at once | (e) restore, then boot |"
echo "|---|---|---|---|---|---|"
for lat in $BOOT_LATENCIES; do
  drop; a=$(boot "$(now)" vm -snapshot)
  rm -rf c1; drop; t0=$(now); mnt c1 "$lat"; b=$(boot "$t0" mnt/deb/latest -snapshot); umnt
  rm -rf c2; drop; t0=$(now); p=$(prestage c2 "$lat"); mnt c2 "$lat"; c=$(boot "$t0" mnt/deb/latest -snapshot); umnt
  rm -rf c3; drop; t0=$(now); mnt c3 "$lat" --prestage deb@latest; d=$(boot "$t0" mnt/deb/latest -snapshot); umnt
  t0=$(now); r=$(restore "$lat"); e=$(boot "$t0" restored -snapshot)
  echo "| $lat ms | $a s | $b s ($(ratio "$b" "$a")) | $c s ($(ratio "$c" "$a"); prestage $p s) | $d s ($(ratio "$d" "$a")) | $e s ($(ratio "$e" "$a"); restore $r s) |"
done
rm -rf restored
