#!/usr/bin/env bash
# Re-measures the pre-staged cases of boot_bench.sh on its work directory (its repository,
# trace and learned profile kept), for another build: (c) prestage after a page-cache drop,
# then replay; (d) `mount --prestage` with the replay started at once.
#   tools/bench/boot_replay_again.sh [WORKDIR=/var/tmp/lm-bbench]   env: LATENCIES, BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
W=${1:-/var/tmp/lm-bbench}
export LIVEMOUNT_CACHE_DIR=$W/data-agent-cache  # the chunk index of backup, restore, ...
source "$SRC/tools/bench/lib.sh"
LM=${BUILD_DIR:-$SRC/build}/tools/livemount
REPLAY=$SRC/tools/bench/replay.py
cd "$W"
[ -f boot.reads ] && [ -d repo ] || { echo "boot_replay_again: run boot_bench.sh first" >&2; exit 1; }
trap 'fusermount3 -u -z "$W/mnt" 2>/dev/null || true' EXIT
echo "| latency | prestage | replay after | prestage + replay | mount --prestage with the replay at once | chunks fetched / pre-staged |"
echo "|---|---|---|---|---|---|"
for lat in ${LATENCIES:-0 10 40}; do
  rm -rf q-pre; drop; t0=$(now)
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" prestage repo deb --cache-dir "$W/q-pre" --state-dir "$W/state" >q-pre.out
  p=$(secs "$t0" "$(now)")
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" mount repo mnt --cache-dir "$W/q-pre" --state-dir "$W/state" --readahead 0 >/dev/null
  drop; c=$(REPEAT=3 python3 "$REPLAY" boot.reads mount mnt); "$LM" umount mnt >/dev/null
  rm -rf q-d; drop; t0=$(now)
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" mount repo mnt --cache-dir "$W/q-d" --state-dir "$W/state" --prestage deb@latest >/dev/null
  REPEAT=1 python3 "$REPLAY" boot.reads mount mnt >/dev/null; d=$(secs "$t0" "$(now)")
  counts=$("$LM" stats mnt --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["repo"]["chunks_fetched"], "/", j["prestage"]["chunks"])')
  "$LM" umount mnt >/dev/null
  echo "| $lat ms | $p s ($(grep -o '[0-9.]* MB/s' q-pre.out)) | $c s | $(echo "$p + $c" | bc) s | $d s | $counts |"
done
