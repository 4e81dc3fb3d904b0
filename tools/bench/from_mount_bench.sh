#!/usr/bin/env bash
# backup --from-mount against its limit: a backup of the same live copy (backup + overlay)
# that reads it whole through the mount, as any backup tool pointed at the mount would.
#   tools/bench/from_mount_bench.sh [DISK_MIB=1024] [WRITES=256]   (64 KiB random writes)
# Prints both times, the chunks reused and read, and whether the new copy restores
# byte-identical to what the mount shows.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
source "$SRC/tools/bench/lib.sh"
MIB=${1:-1024}
WRITES=${2:-256}
bench_build build
bench_workdir "${BENCH_DIR:-/var/tmp/livemount-from-mount-bench}"
trap 'fusermount3 -u -z "$W/mnt" 2>/dev/null || true; cd /; rm -rf "$W"' EXIT
mkdir -p vm
head -c $((MIB << 20)) /dev/urandom >vm/disk-flat.vmdk
echo 'displayName = "bench"' >vm/bench.vmx
"$LM" init repo --encryption none >/dev/null 2>&1
"$LM" backup repo vm --vm bench >/dev/null 2>&1
"$LM" mount repo mnt --cache-dir "$W/cache" --state-dir "$W/state" >/dev/null
C=mnt/bench/$(readlink mnt/bench/latest)
python3 - "$C/disk-flat.vmdk" "$WRITES" <<'PY'
import os, random, sys
random.seed(7)
fd = os.open(sys.argv[1], os.O_WRONLY)
size = os.fstat(fd).st_size
for _ in range(int(sys.argv[2])):
    os.pwrite(fd, os.urandom(65536), random.randrange(0, size - 65536) & ~4095)
os.fsync(fd)
os.close(fd)
PY
drop
t0=$(now); "$LM" backup --from-mount mnt bench@latest --vm bench-live --json >fm.json 2>/dev/null; t1=$(now)
drop
t2=$(now); "$LM" backup repo "$C" --vm bench-whole --json >whole.json 2>/dev/null; t3=$(now)
python3 - fm.json "$(secs "$t0" "$t1")" "$(secs "$t2" "$t3")" "$MIB" "$WRITES" <<'PY'
import json, sys
fm = json.load(open(sys.argv[1]))
t_fm, t_whole, mib, writes = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
f = fm["from_mount"]
print(f"live copy: {mib} MiB disk, {writes} random 64 KiB writes in its overlay")
print(f"| | seconds | chunks read |")
print(f"|---|---|---|")
print(f"| backup --from-mount | {t_fm:.2f} | {f['chunks_read']} (reused unread: {f['chunks_reused']}) |")
print(f"| backup of the mount's copy, read whole (the limit it beats) | {t_whole:.2f} | all |")
print(f"ratio: {t_whole / t_fm:.1f}x faster")
PY
"$LM" restore repo bench-live restored >/dev/null 2>&1
cmp -s restored/disk-flat.vmdk "$C/disk-flat.vmdk" && echo "the new copy restores byte-identical to the mount" \
  || { echo "the new copy differs from the mount" >&2; exit 1; }
"$LM" umount mnt >/dev/null
