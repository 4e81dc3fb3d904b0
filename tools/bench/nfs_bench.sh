#!/usr/bin/env bash
# NFS export benchmark: what a hypervisor reading a disk over NFS gets. QEMU's own NFS
# client (qemu-io, libnfs) reads one image (half random, half text) sequentially in 1 MiB
# requests and at random in 4 KiB requests, queue depth 1, from: the local file (the
# limit), the live mount directly (FUSE, warm cache), and the live mount exported by
# nfs-ganesha, warm and cold (empty read-cache). Page cache dropped before each case.
#   tools/bench/nfs_bench.sh [SIZE_MIB=512] [WORKDIR=/var/tmp/lm-nbench]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-512}
W=${2:-/var/tmp/lm-nbench}
export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache  # the chunk index of backup, restore, ...
RAND_IOS=${RAND_IOS:-2000}
P=20590; MP=20548
"$SRC/tools/install-deps.sh" build test
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SRC/build" -j"$(nproc)" --target livemount >/dev/null
LM=$SRC/build/tools/livemount
rpcbind_before=0; (exec 3<>/dev/tcp/127.0.0.1/111) 2>/dev/null && rpcbind_before=1
cleanup() {
  "$LM" umount "$W/mnt" >/dev/null 2>&1 || fusermount3 -u -z "$W/mnt" 2>/dev/null || true
  [ $rpcbind_before = 1 ] || pkill -x rpcbind || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W" && mkdir -p "$W/vm" "$W/mnt"
python3 "$SRC/tools/bench/make_image.py" "$W/vm/disk.raw" "$MIB"
"$LM" init "$W/repo" --encryption none >/dev/null
"$LM" backup "$W/repo" "$W/vm" --vm bench >/dev/null
python3 - "$MIB" "$RAND_IOS" "$W" <<'PY'
import random, sys
mib, n, w = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
open(w + "/seq.cmds", "w").write("".join("read %d 1M\n" % (i << 20) for i in range(mib)))
random.seed(42)
open(w + "/rand.cmds", "w").write("".join("read %d 4k\n" % (random.randrange(mib * 256) * 4096) for _ in range(n)))
PY
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
# run TARGET seq|rand [qemu-io options] -> seconds
run() {
  local target=$1 kind=$2; shift 2
  drop
  local t0; t0=$(date +%s.%N)
  qemu-io -r -f raw "$@" "$target" <"$W/$kind.cmds" >"$W/qio.out" 2>&1
  grep -qiE 'error|failed' "$W/qio.out" && { tail -3 "$W/qio.out" >&2; exit 1; }
  echo "$(date +%s.%N) - $t0" | bc
}
mount_lm() {
  "$LM" mount "$W/repo" "$W/mnt" --cache-dir "$W/cache" --state-dir "$W/state" --cache-size 4G \
    --read-only --export --nfs-port $P --mount-port $MP >/dev/null
}
mount_lm
ID=$(readlink "$W/mnt/bench/latest")
NFS="nfs://127.0.0.1$W/mnt/bench/$ID/disk.raw"

declare -A S
S[local_seq]=$(run "$W/vm/disk.raw" seq -t none)
S[local_rand]=$(run "$W/vm/disk.raw" rand -t none)
S[nfs_cold_seq]=$(run "$NFS" seq)                      # empty cache: from the repository
"$LM" umount "$W/mnt" >/dev/null; rm -rf "$W/cache"; mount_lm
S[nfs_cold_rand]=$(run "$NFS" rand)
"$LM" prestage "$W/repo" bench --all --mount "$W/mnt" >/dev/null
S[fuse_seq]=$(run "$W/mnt/bench/$ID/disk.raw" seq -t none)
S[fuse_rand]=$(run "$W/mnt/bench/$ID/disk.raw" rand -t none)
S[nfs_warm_seq]=$(run "$NFS" seq)
S[nfs_warm_rand]=$(run "$NFS" rand)

row() {  # row NAME KEY_PREFIX
  local seq=${S[${2}_seq]} rand=${S[${2}_rand]}
  printf "| %s | %.0f MB/s | %.2fx | %.0f IOPS | %.2fx |\n" "$1" \
    "$(echo "$MIB * 1.048576 / $seq" | bc -l)" "$(echo "$seq / ${S[local_seq]}" | bc -l)" \
    "$(echo "$RAND_IOS / $rand" | bc -l)" "$(echo "$rand / ${S[local_rand]}" | bc -l)"
}
echo
echo "NFS benchmark: $MIB MiB image, qemu-io at queue depth 1, $RAND_IOS random reads (time as a ratio to local)"
echo "| read path | sequential 1 MiB | time vs local | random 4 KiB | time vs local |"
echo "|---|---|---|---|---|"
row "local file (O_DIRECT)" local
row "live mount, warm (FUSE, O_DIRECT)" fuse
row "NFS export, warm (ganesha over the mount)" nfs_warm
row "NFS export, cold (empty read-cache)" nfs_cold
