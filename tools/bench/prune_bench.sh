#!/usr/bin/env bash
# Retention benchmark: COPIES backup copies of one disk image, each after DAILY_CHANGE% of
# its blocks were rewritten, then `forget --keep-last 7 --prune`: livemount and restic on
# the same history in the same run (restic's default --max-unused is 5%, as ours), both
# repositories encrypted.
#   tools/bench/prune_bench.sh [SIZE_MIB=1024] [COPIES=30] [WORKDIR=/var/tmp/lm-prune-bench]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MIB=${1:-1024}
COPIES=${2:-30}
W=${3:-/var/tmp/lm-prune-bench}
export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache  # the chunk index of backup, restore, ...
CHANGE_PCT=2
"$SRC/tools/install-deps.sh" build bench
cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$SRC/build" -j"$(nproc)" --target livemount >/dev/null
LM=$SRC/build/tools/livemount
rm -rf "$W" && mkdir -p "$W/vm"
python3 "$SRC/tools/bench/make_image.py" "$W/vm/disk.raw" "$MIB"
# Both encrypted (livemount's default, restic's only way): each derives its key once per
# command.
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache LIVEMOUNT_PASSWORD=bench
"$LM" init "$W/lm-repo" >/dev/null
restic init --repo "$W/restic-repo" >/dev/null 2>&1

# Rewrites CHANGE_PCT% of the image in 1 MiB pieces at random places (fixed seed per copy).
change() {
  python3 - "$W/vm/disk.raw" "$MIB" "$CHANGE_PCT" "$1" <<'PY'
import os, random, sys
path, mib, pct, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
with open(path, "r+b") as f:
    for _ in range(max(1, mib * pct // 100)):
        f.seek(rnd.randrange(mib) << 20)
        f.write(rnd.randbytes(1 << 20))
PY
}
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
lm_backups=0 r_backups=0
for i in $(seq "$COPIES"); do
  [ "$i" -eq 1 ] || change "$i"
  lm_backups=$(echo "$lm_backups + $(seconds "$LM" backup "$W/lm-repo" "$W/vm" --vm bench)" | bc)
  r_backups=$(echo "$r_backups + $(seconds restic --repo "$W/restic-repo" backup "$W/vm/disk.raw")" | bc)
  sleep 1  # livemount names copies by the second
done
lm_before=$(du -sm "$W/lm-repo" | cut -f1)
r_before=$(du -sm "$W/restic-repo" | cut -f1)
sync
lm_prune=$(seconds "$LM" forget "$W/lm-repo" bench --keep-last 7 --prune)
r_prune=$(seconds restic --repo "$W/restic-repo" forget --keep-last 7 --prune)
lm_after=$(du -sm "$W/lm-repo" | cut -f1)
r_after=$(du -sm "$W/restic-repo" | cut -f1)
"$LM" verify "$W/lm-repo" --read-data >/dev/null
"$LM" restore "$W/lm-repo" bench "$W/lm-out" >/dev/null && cmp "$W/vm/disk.raw" "$W/lm-out/disk.raw"

echo
echo "History: $COPIES copies of a $MIB MiB image (half random, half text), ${CHANGE_PCT}% of it rewritten before each;"
echo "forget --keep-last 7 --prune; $(nproc) cores; $(date -u +%Y-%m-%d)"
echo
echo "| | livemount | restic | livemount / restic |"
echo "|---|---|---|---|"
printf '| %s backups | %.1f s | %.1f s | %.1fx faster |\n' "$COPIES" "$lm_backups" "$r_backups" "$(echo "$r_backups / $lm_backups" | bc -l)"
printf '| forget + prune | %.2f s | %.2f s | %.1fx faster |\n' "$lm_prune" "$r_prune" "$(echo "$r_prune / $lm_prune" | bc -l)"
echo "| repository before | ${lm_before} MiB | ${r_before} MiB | |"
echo "| reclaimed | $((lm_before - lm_after)) MiB | $((r_before - r_after)) MiB | |"
echo "| repository after | ${lm_after} MiB | ${r_after} MiB | |"
rm -rf "$W"
