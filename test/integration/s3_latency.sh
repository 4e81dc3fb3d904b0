#!/usr/bin/env bash
# The object store seen from far away, on a real Ceph RGW: through a latency-injecting
# proxy (tools/bench/latency_proxy.py; this kernel has no netem) at 20 and 50 ms per
# request, a cold sequential read through the live mount returns the right bytes with far
# fewer GETs than chunks (neighbouring chunks of a pack come with one ranged GET), and a
# pre-stage of the whole disk leaves nothing for a read to fetch.
LM=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
source "$(dirname "$0")/lib.sh"
s3_setup
cd "$WORK"
R=$(s3_repo latency)
$LM init "$R" --encryption none >/dev/null
mkdir vm
make_raw_disk vm/disk.raw 48  # 32 MiB of data: 256 chunks
$LM backup "$R" vm --vm vm >/dev/null
port=${LM_S3_ENDPOINT##*:}
chunk_gets='sum(k["gets"] for n, k in j["requests"].items() if n != "other")'

for ms in 20 50; do
  note "through the proxy at $ms ms"
  pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 "$SRC/tools/bench/latency_proxy.py" "$pport" "127.0.0.1:$port" "$ms" >"proxy-$ms.out" 2>&1 & proxy=$!
  cleanup_hooks+=("kill $proxy 2>/dev/null")
  for _ in $(seq 50); do grep -q ready "proxy-$ms.out" && break; sleep 0.1; done
  grep -q ready "proxy-$ms.out" || fail "the latency proxy did not start"
  via=s3:http://127.0.0.1:$pport/${R#s3:"$LM_S3_ENDPOINT"/}
  export CACHE_DIR=$WORK/cache-$ms STATE_DIR=$WORK/state-$ms
  mount_repo "$via" "mnt-$ms"
  cmp -s "mnt-$ms/vm/latest/disk.raw" vm/disk.raw || fail "a cold read at $ms ms returned wrong bytes"
  $LM stats "mnt-$ms" --json >"st-$ms.json"
  gets=$(json_get "st-$ms.json" "$chunk_gets")
  fetched=$(json_get "st-$ms.json" 'j["repo"]["chunks_fetched"]')
  slowest=$(json_get "st-$ms.json" 'max(k["p50_ms"] for k in j["requests"].values())')
  echo "  cold read: $fetched chunks fetched with $gets GETs; median request <$slowest ms"
  [ "$fetched" -ge 250 ] || fail "the cold read fetched only $fetched chunks"
  [ $((gets * 4)) -le "$fetched" ] || fail "a cold read at $ms ms made $gets GETs for $fetched chunks (neighbours not coalesced)"
  python3 -c "import sys; sys.exit(0 if float('$slowest') >= $ms else 1)" ||
    fail "requests took <$slowest ms: the proxy added no $ms ms"
  $LM umount "mnt-$ms" >/dev/null
  rm -rf "$CACHE_DIR"

  mount_repo "$via" "mnt-$ms"
  $LM prestage "$via" vm --mount "mnt-$ms" --all --state-dir "$STATE_DIR" >pre.out || { cat pre.out; fail "prestage at $ms ms"; }
  grep -q " 0 failed" pre.out || { cat pre.out; fail "prestage failures at $ms ms"; }
  before=$(stat_of "mnt-$ms" "$chunk_gets")
  drop_caches
  cmp -s "mnt-$ms/vm/latest/disk.raw" vm/disk.raw || fail "read after the pre-stage at $ms ms"
  after=$(stat_of "mnt-$ms" "$chunk_gets")
  [ "$after" = "$before" ] || fail "reads after prestage --all at $ms ms made $((after - before)) GETs"
  $LM umount "mnt-$ms" >/dev/null
  check_log
  kill $proxy
done
