#!/usr/bin/env bash
# The chunk index at the scale of a real repository (issue 15, "Scale"): N synthetic chunks
# (20 million: a 2.4 TiB repository at 128 KiB chunks) in the repository's index objects,
# beside two real backup copies. For the index in memory (LIVEMOUNT_CHUNK_INDEX=memory, as
# before) and on disk (the default), it reports:
#  - lm_index_bench: time to open the repository, resident memory, lookups per second
#    (hits; misses, which is what a backup of new data asks), one and two threads;
#  - the peak resident memory (and time) of a backup of a new 1 GiB VM, of a media agent
#    mounting the repository and reading a copy through it, and of `prestage --all`.
#   tools/bench/index_bench.sh [WORKDIR=/var/tmp/lm-ibench]     env: N=20000000 BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
N=${N:-20000000}
source "$SRC/tools/bench/lib.sh"
bench_build build
cmake --build "$BUILD" -j"$(nproc)" --target lm_index_bench >/dev/null
IB=$BUILD/tools/lm_index_bench
bench_workdir "${1:-/var/tmp/lm-ibench}"

# peak COMMAND...: runs it, prints "<peak RSS MiB> <seconds>" (its own, children included).
peak() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
if rc != 0:
    sys.exit(f"{sys.argv[1:]} exited {rc}")
print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} {time.monotonic() - t:.1f}")
PY
}
vm() {  # vm DIR SEED: a 1 GiB VM of random data
  mkdir -p "$1"
  python3 -c "import random,sys; r=random.Random($2); f=open('$1/disk.raw','wb'); [f.write(r.randbytes(1<<20)) for _ in range(1024)]"
}

"$LM" init repo --encryption none >/dev/null 2>&1
vm base 1
LIVEMOUNT_CHUNK_INDEX=memory "$LM" backup repo base --vm base >/dev/null 2>&1
echo "synthetic index: $("$IB" synth repo "$N")"
echo "index objects: $(du -sh repo/index | cut -f1)"

for mode in memory disk; do
  export LIVEMOUNT_CHUNK_INDEX=$mode
  C=$W/cache-$mode
  flag=$([ $mode = memory ] && echo --memory || true)
  echo "== index in $mode"
  echo "lookup (first open): $("$IB" lookup repo "$N" $flag --cache-dir "$C")"
  echo "lookup (again):      $("$IB" lookup repo "$N" $flag --cache-dir "$C")"
  vm "new-$mode" "$([ $mode = memory ] && echo 2 || echo 3)"
  read -r rss s < <(peak "$LM" backup repo "new-$mode" --vm "new-$mode" --cache-dir "$C")
  echo "backup of a new 1 GiB VM: peak RSS $rss MiB, $s s"
  drop
  t0=$(now)
  "$LM" mount repo mnt --cache-dir "$C" --state-dir "$W/state-$mode" >/dev/null
  pid=$(pgrep -f -n "livemount mount repo mnt")
  dd if=mnt/base/latest/disk.raw of=/dev/null bs=1M status=none
  hwm=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  echo "mount, read a 1 GiB copy through it: media agent peak RSS $hwm MiB, $(secs "$t0" "$(now)") s"
  "$LM" umount mnt >/dev/null
  read -r rss s < <(peak "$LM" prestage repo "new-$mode" --all --cache-dir "$C" --state-dir "$W/state-$mode")
  echo "prestage --all of the new VM: peak RSS $rss MiB, $s s"
done
echo "disk use: chunk index $(du -sh "$W/cache-disk/chunk-index" | cut -f1), metadata copies $(du -sh "$W/cache-disk/metadata" | cut -f1)"
