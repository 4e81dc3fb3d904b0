#!/usr/bin/env bash
# Time to a working VM with the repository on a real object store (issue 15): the real
# Debian guest of boot_bench.sh (its VM, recorded boot trace and learned profile, kept in
# its work directory) backed up into Ceph RGW (started here, stopped at the end), then the
# trace replayed at full speed (O_DIRECT, as a KVM guest would read) with every request to
# RGW delayed by the latency proxy: (a) local files, (b) cold mount, (c) mount after a
# pre-stage (pre-stage time apart), (d) `mount --prestage` with the replay started at once.
#   tools/bench/boot_s3_bench.sh [BBENCH_WORKDIR=/var/tmp/lm-bbench] [WORKDIR=/var/tmp/lm-bs3]
#   env: LATENCIES="0 10 40", BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-/var/tmp/lm-bbench}
W=${2:-/var/tmp/lm-bs3}
source "$SRC/tools/bench/lib.sh"
[ -f "$B/boot.reads" ] && [ -d "$B/vm" ] && [ -d "$B/state" ] ||
  { echo "boot_s3_bench: run boot_bench.sh first (no trace, VM or profile in $B)" >&2; exit 1; }
bench_build build bench s3
REPLAY=$SRC/tools/bench/replay.py
CLUSTER="bash $SRC/test/integration/ceph/cluster.sh"
PROXY_PID=
finish() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null || true
  fusermount3 -u -z "$W/mnt" 2>/dev/null || true
  $CLUSTER stop "$W/ceph" || true
}
bench_workdir "$W"
trap finish EXIT
cp -r "$B/state" "$W/state"  # the learned profile of deb
$CLUSTER start "$W/ceph"
source "$W/ceph/s3.env"
export LIVEMOUNT_PASSWORD=bench  # encrypted, as a real repository would be
"$LM" init "s3:$LM_S3_ENDPOINT/lm-boot" >/dev/null 2>&1
t0=$(now); "$LM" backup "s3:$LM_S3_ENDPOINT/lm-boot" "$B/vm" --vm deb --json >backup.json
backup_s=$(secs "$t0" "$(now)")
# The trace names the backup copy it was recorded from: the same files, under this copy's id.
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' backup.json)
sed -E "s/^deb@[^:]+:/deb@$id:/" "$B/boot.reads" >boot.reads

proxy() {  # proxy MS: starts the latency proxy in front of RGW; sets VIA
  [ -n "$PROXY_PID" ] && { kill "$PROXY_PID"; wait "$PROXY_PID" 2>/dev/null || true; }
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 "$SRC/tools/bench/latency_proxy.py" "$port" "${LM_S3_ENDPOINT#http://}" "$1" >proxy.out &
  PROXY_PID=$!
  for _ in $(seq 50); do grep -q ready proxy.out && break; sleep 0.1; done
  VIA=s3:http://127.0.0.1:$port/lm-boot
}
mnt() {  # mnt CACHE [options]
  local cache=$1; shift
  "$LM" mount "$VIA" mnt --cache-dir "$W/$cache" --state-dir "$W/state" "$@" >/dev/null
}
umnt() { "$LM" umount mnt >/dev/null; }
ratio() { printf '%.2fx' "$(echo "scale=4; $1 / $2" | bc)"; }

reads=$(wc -l <boot.reads)
mib=$(awk '{s+=$3} END {printf "%d", s / 1048576}' boot.reads)
echo "Real guest on Ceph RGW (one OSD, on this machine), encrypted repository; backup into RGW $backup_s s."
echo "Boot read trace: $reads reads, $mib MiB; every request to RGW delayed by the latency proxy."
echo
echo "| latency | (a) local | (b) cold | (c) pre-staged | prestage | (c) prestage + replay | (d) mount --prestage |"
echo "|---|---|---|---|---|---|---|"
drop
local_s=$(python3 "$REPLAY" boot.reads local "$B/vm")
for lat in ${LATENCIES:-0 10 40}; do
  proxy "$lat"
  rm -rf c-cold; mnt c-cold --readahead 0; drop
  b=$(REPEAT=1 python3 "$REPLAY" boot.reads mount mnt); bf=$(fetched); umnt
  rm -rf c-pre; drop; t0=$(now)
  "$LM" prestage "$VIA" deb --cache-dir "$W/c-pre" --state-dir "$W/state" >pre.out
  p=$(secs "$t0" "$(now)")
  mnt c-pre --readahead 0; drop; before=$(fetched)
  c=$(python3 "$REPLAY" boot.reads mount mnt); cf=$(( $(fetched) - before )); umnt
  rm -rf c-d; drop; t0=$(now)
  mnt c-d --prestage deb@latest
  REPEAT=1 python3 "$REPLAY" boot.reads mount mnt >/dev/null; d=$(secs "$t0" "$(now)"); umnt
  echo "| $lat ms | $local_s s | $b s ($(ratio "$b" "$local_s"), $bf chunks) | $c s ($(ratio "$c" "$local_s"), $cf chunks) | $p s ($(grep -o '[0-9.]* MB/s' pre.out)) | $(echo "$p + $c" | bc) s | $d s |"
done
