#!/usr/bin/env bash
# A guest's reads while its disk is hydrated (issue 15, "Scale"): a VM disk of SIZE random
# bytes, live-mounted cold at each simulated repository latency. A probe reads random
# 4 KiB pages with O_DIRECT, one every 20 ms, as a running guest would: first on the idle
# mount, then while `prestage --all` hydrates the whole disk through the media agent (its
# fetches yield to guest reads). Reported: the probe's latency percentiles both ways and
# their ratio (aim: within 1.5x), the hydration's time and throughput, and what `stats`
# said of it half way (bytes remaining, time left).
#   tools/bench/hydrate_bench.sh [WORKDIR=/var/tmp/lm-hbench]
#   env: SIZE=4G LATENCIES="0 10" PROBE_SECONDS=15 BUILD_DIR
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SIZE=${SIZE:-4G}
PROBE_SECONDS=${PROBE_SECONDS:-15}
source "$SRC/tools/bench/lib.sh"
bench_build build
PROBE=$SRC/tools/bench/latency_probe.py
bench_workdir "${1:-/var/tmp/lm-hbench}"
mkdir vm
mib=$(python3 -c "import sys; s=sys.argv[1]; u={'M':1,'G':1024}[s[-1]]; print(int(s[:-1])*u)" "$SIZE")
python3 -c "import random; r=random.Random(7); f=open('vm/disk.raw','wb'); [f.write(r.randbytes(1<<20)) for _ in range($mib)]"
"$LM" init repo --encryption none >/dev/null 2>&1
"$LM" backup repo vm --vm vm >/dev/null 2>&1
ratio() { python3 -c "import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print(' '.join(f'{k} {b[k]/a[k]:.2f}x' for k in ('p50','p90','p99')))" "$1" "$2"; }

for lat in ${LATENCIES:-0 10}; do
  echo "== ${lat} ms per repository read, ${SIZE} disk"
  rm -rf "cache-$lat" "state-$lat" stop
  LIVEMOUNT_REPO_LATENCY_MS=$lat "$LM" mount repo mnt --cache-dir "$W/cache-$lat" --state-dir "$W/state-$lat" >/dev/null
  disk=mnt/vm/latest/disk.raw
  drop
  idle=$("$PROBE" "$disk" "$PROBE_SECONDS" 20 1)
  echo "idle:      $idle"
  t0=$(now)
  "$LM" prestage repo vm --all --mount mnt >hydrate.out 2>&1 &
  hydrate=$!
  "$PROBE" "$disk" 600 20 2 stop >busy.json &
  probe=$!
  sleep 3
  "$LM" stats mnt | grep -i "prestage" | head -2 | sed 's/^/stats:     /' || true
  wait $hydrate || { cat hydrate.out; exit 1; }
  t=$(secs "$t0" "$(now)")
  touch stop
  wait $probe
  busy=$(cat busy.json)
  echo "hydrating: $busy"
  echo "ratio:     $(ratio "$idle" "$busy")"
  echo "hydration: $t s, $(python3 -c "print(f'{$mib * 1.048576 / $t:.0f}')") MB/s ($(tail -1 hydrate.out))"
  "$LM" umount mnt >/dev/null
done
