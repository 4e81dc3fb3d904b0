#!/usr/bin/env bash
# Mass recovery (issue 15). N VMs cloned from one template of the real Debian guest, each
# changed by a boot of its own (its logs, its journal) and backed up as its own VM, are
# brought back at once from one media agent: the boot recorded from the first clone,
# replayed for every clone at once at full speed against a cold mount at LAT ms per
# repository read. Reported: the time until all N are through, the repository chunks
# fetched against the distinct chunks of their working sets (each must come once), and N
# restores of the same copies one after the other. Before that: the second VM of the same
# OS replayed on a cache warm with the first (its misses).
#   tools/bench/mass_bench.sh [WORKDIR=/var/tmp/lm-mbench]
#   env: N=8 LAT=10 DATA_SIZE=1G APP_MIB=128 BUILD_DIR LIVEMOUNT_DEBIAN_ROOTFS
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/var/tmp/lm-mbench}
export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache  # the chunk index of backup, restore, ...
N=${N:-8}
LAT=${LAT:-10}
source "$SRC/tools/bench/lib.sh"
bench_build build demo guest
BOOT=$SRC/tools/boot-sample-vm.sh
REPLAY=$SRC/tools/bench/replay.py
trap 'fusermount3 -u -z "$W/mnt" 2>/dev/null || true' EXIT
fusermount3 -u -z "$W/mnt" 2>/dev/null || true
rm -rf "$W" && mkdir -p "$W/mnt" && cd "$W"
export LIVEMOUNT_DEBIAN_ROOTFS=${LIVEMOUNT_DEBIAN_ROOTFS:-$W.rootfs}
mnt() {  # mnt CACHE [options]
  local cache=$1; shift
  LIVEMOUNT_REPO_LATENCY_MS=$LAT "$LM" mount repo mnt --cache-dir "$W/$cache" --state-dir "$W/state" --readahead 0 "$@" >/dev/null
}

"$SRC/tools/make-sample-vm.sh" tmpl --distro debian --name tmpl --app-mib "${APP_MIB:-128}" \
  --data-size "${DATA_SIZE:-1G}" 2>/dev/null
"$LM" init repo --encryption none >/dev/null 2>&1
for i in $(seq 1 "$N"); do
  mkdir "c$i" && cp tmpl/tmpl.qcow2 tmpl/tmpl-data.qcow2 tmpl/tmpl.xml "c$i/"
  "$BOOT" "c$i/tmpl.qcow2" "c$i/tmpl-data.qcow2" >/dev/null  # its own changes
  "$LM" backup repo "c$i" --vm "vm$i" >/dev/null 2>&1
done

# The first clone's boot, recorded; replayed for clone i at its own latest copy.
mnt rec --record-reads "$W/rec.reads"
"$BOOT" mnt/vm1/latest/tmpl.qcow2 mnt/vm1/latest/tmpl-data.qcow2 -snapshot >/dev/null
"$LM" umount mnt >/dev/null
for i in $(seq 1 "$N"); do sed "s/^vm1@[^:]*:/vm$i@latest:/" rec.reads >"vm$i.reads"; done
[ -s vm1.reads ] || { echo "mass_bench: no reads recorded" >&2; exit 1; }
# The distinct non-zero chunks of the working sets, from the clones' own files.
union() {  # union I...: distinct chunks the boots of these clones read
  python3 - "$@" <<'PY'
import hashlib, sys
C, zero, seen = 131072, hashlib.sha256(bytes(131072)).digest(), set()
for i in sys.argv[1:]:
    idx = set()
    for line in open(f"vm{i}.reads"):
        what, off, n = line.rsplit(" ", 2)
        if int(n):
            idx |= {(what.split(":", 1)[1], k) for k in range(int(off) // C, (int(off) + int(n) - 1) // C + 1)}
    for path, k in idx:
        with open(f"c{i}/{path}", "rb") as f:
            f.seek(k * C)
            block = f.read(C)
        if block and hashlib.sha256(block.ljust(C, b"\0")).digest() != zero:
            seen.add(hashlib.sha256(block).digest())
print(len(seen))
PY
}
echo "Mass recovery: $N clones of the real Debian guest (application ${APP_MIB:-128} MiB, data disk ${DATA_SIZE:-1G}), each booted once on its own and backed up as its own VM; repository latency $LAT ms per read; $(nproc) cores, $(date -u +%Y-%m-%d)."
echo "Boot trace: $(wc -l <rec.reads) reads, $(awk '{s+=$3} END {printf "%d", s / 1048576}' rec.reads) MiB."
echo

rm -rf cw; mnt cw; drop
REPEAT=1 python3 "$REPLAY" vm1.reads mount mnt >/dev/null; f1=$(fetched)
drop; s2=$(REPEAT=1 python3 "$REPLAY" vm2.reads mount mnt); f2=$(( $(fetched) - f1 ))
"$LM" umount mnt >/dev/null
u1=$(union 1); u12=$(union 1 2)
echo "Second VM of the same OS on a cache warm with the first: $f2 chunks fetched ($((u12 - u1)) of its chunks are not the first's; the first fetched $f1 of $u1), replay $s2 s."
echo

rm -rf cm; mnt cm; drop
t0=$(now)
pids=()
for i in $(seq 1 "$N"); do REPEAT=1 python3 "$REPLAY" "vm$i.reads" mount mnt >"r$i.out" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
mass=$(secs "$t0" "$(now)"); fm=$(fetched)
"$LM" umount mnt >/dev/null
all=$(seq 1 "$N" | xargs); um=$(union $all)
t0=$(now)
for i in $(seq 1 "$N"); do
  rm -rf restored; LIVEMOUNT_REPO_LATENCY_MS=$LAT "$LM" restore repo "vm$i" restored >/dev/null
done
rest=$(secs "$t0" "$(now)")
echo "| $N VMs at once, $LAT ms | seconds | repository chunks |"
echo "|---|---|---|"
echo "| replayed boots from one cold live mount | $mass s | $fm fetched; $um distinct in their working sets |"
echo "| $N restores, one after the other | $rest s | every chunk of every copy |"
echo
echo "Restores / live mount: $(printf '%.1fx' "$(echo "scale=3; $rest / $mass" | bc)")."
