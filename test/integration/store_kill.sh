#!/usr/bin/env bash
# A backup killed with SIGKILL at any moment leaves a repository that verifies clean and
# lists no partial backup copy; the next backup succeeds and restores byte for byte.
LM=$1
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir vm
make_raw_disk vm/disk.raw 192
$LM init repo --encryption none --chunk-size 64K >/dev/null
completed=0
for delay in 0.05 0.2 0.4 0.7 1.0 1.5; do
  # Make every run write new data: rewrite a slice so dedup cannot skip everything.
  head -c $((16 << 20)) /dev/urandom | dd of=vm/disk.raw bs=1M seek=$((RANDOM % 170)) \
    conv=notrunc status=none
  $LM backup repo vm --vm vm1 --threads 2 >/dev/null 2>&1 & pid=$!
  sleep "$delay"
  if kill -9 $pid 2>/dev/null; then
    wait $pid 2>/dev/null || true
  else
    wait $pid && completed=$((completed + 1))
  fi
  $LM verify repo --read-data >v.out 2>&1 || { cat v.out; fail "verify after kill at ${delay}s"; }
  n=$($LM list repo --json | python3 -c 'import json,sys; v=json.load(sys.stdin)["vms"]; print(len(v[0]["backups"]) if v else 0)')
  [ "$n" -eq $completed ] || fail "after kill at ${delay}s: $n backups listed, $completed completed"
done
note "killed at 6 moments; $completed backups had completed"
$LM backup repo vm --vm vm1 >/dev/null || fail "backup after kills"
$LM restore repo vm1 out >/dev/null
cmp -s out/disk.raw vm/disk.raw || fail "restore after kills differs"
$LM verify repo --read-data >/dev/null || fail "final verify"
echo "store_kill: all checks passed"
