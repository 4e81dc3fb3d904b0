#!/usr/bin/env bash
# Learned profiles and the pre-stager: a live mount records what a real boot reads; the
# profile learned from it, pre-staged into a fresh cache, makes the next boot of the VM,
# from a newer backup copy too, read nothing from the repository. Also: show, export,
# import, the backup copy's own profile, the structural fallback, --all, --pin-for, errors.
LM=$1
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$WORK"

"$SRC/tools/make-sample-vm.sh" vm --flavour kvm --name guest >/dev/null
$LM init repo --encryption none >/dev/null
$LM backup repo vm --vm guest >/dev/null

note "a boot from the mount is recorded (first touches; and every read with --record-reads)"
CACHE_DIR=$WORK/cache1 mount_repo repo mnt --record-reads reads.log
"$SRC/tools/boot-sample-vm.sh" mnt/guest/latest/guest.qcow2 -snapshot >/dev/null
$LM umount mnt >/dev/null
ls state/traces/guest/*.json >/dev/null || fail "no trace recorded"
grep -Eq "^guest@[0-9TZ-]+:guest.qcow2 [0-9]+ [0-9]+$" reads.log || fail "--record-reads logged no reads"
python3 "$SRC/tools/bench/replay.py" reads.log local vm >/dev/null || fail "replay of the recorded reads"

note "learn, show, export, import"
$LM profile learn guest --state-dir state | grep -q "from 1 recorded mounts" || fail "learn"
$LM profile show state/profiles/guest.json | grep -q "learned" || fail "show"
$LM profile export repo guest exported.json --state-dir state | grep -q "state/profiles/guest.json" || fail "export picks the learned profile"
$LM profile import other exported.json --state-dir state >/dev/null
[ -f state/profiles/other.json ] || fail "import"
expect_fail "no recorded live mounts" $LM profile learn nobody --state-dir state
echo '{"format":"nope"}' >bad.json
expect_fail "bad.json: not a livemount profile" $LM profile show bad.json

note "prestage the learned profile for a newer backup copy into a fresh cache"
$LM backup repo vm --vm guest >/dev/null
$LM prestage repo guest --cache-dir "$WORK/cache2" --state-dir state >pre.out
grep -q "from profile .*state/profiles/guest.json" pre.out || { cat pre.out; fail "prestage did not use the learned profile"; }
grep -q " 0 failed" pre.out || fail "prestage failures"
CACHE_DIR=$WORK/cache2 mount_repo repo mnt --readahead 0
"$SRC/tools/boot-sample-vm.sh" mnt/guest/latest/guest.qcow2 -snapshot >/dev/null
[ "$(stat_of mnt 'j["repo"]["chunks_fetched"]')" = 0 ] || fail "the pre-staged boot read from the repository"
[ "$(stat_of mnt 'j["cache"]["hits"]')" -gt 0 ] || fail "no cache hits"
expect_fail "not a livemount mount" $LM prestage repo guest --mount "$WORK" --state-dir state
$LM umount mnt >/dev/null
$LM prestage repo guest --cache-dir "$WORK/cache2" --state-dir state | grep -q "0 fetched" || fail "second prestage should find everything cached"

note "the backup copy's own profile wins over the learned one; structural fallback"
$LM backup repo vm --vm guest --profile exported.json >/dev/null
$LM profile export repo guest own.json --state-dir state | grep -q "backups/guest/.*/profile.json" || fail "own profile not preferred"
$LM backup repo vm --vm fresh >/dev/null
$LM prestage repo fresh --cache-dir "$WORK/cache3" --state-dir state >fb.out
grep -q "structural" fb.out || { cat fb.out; fail "no structural fallback"; }

note "--all hydrates every chunk; --pin-for pins"
$LM prestage repo guest --cache-dir "$WORK/cache4" --state-dir state --all --pin-for 1h >all.out
chunks=$($LM verify repo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
grep -q "with --all" all.out || fail "--all summary"
CACHE_DIR=$WORK/cache4 mount_repo repo mnt
[ "$(stat_of mnt 'j["cache"]["entries"]')" -ge "$((chunks - 1))" ] || fail "--all did not stage everything"
[ "$(stat_of mnt 'j["cache"]["pinned"]')" -gt 0 ] || fail "--pin-for pinned nothing"
$LM umount mnt >/dev/null
expect_fail "pin-for" $LM prestage repo guest --cache-dir "$WORK/cache4" --pin-for x
expect_fail "no VM named" $LM prestage repo ghost --cache-dir "$WORK/cache4"
note "a prestage during a mount goes through the media agent, and pins until the mount ends"
CACHE_DIR=$WORK/cache5 mount_repo repo mnt --readahead 0
$LM prestage repo guest --cache-dir "$WORK/cache5" --state-dir state >thru.out
grep -q "through the mount at" thru.out || { cat thru.out; fail "prestage did not go through the mount"; }
staged=$(stat_of mnt 'j["prestage"]["chunks"]')
[ "$staged" -gt 0 ] || fail "stats prestage.chunks is 0"
[ "$(stat_of mnt 'j["cache"]["pinned"]')" -ge "$staged" ] || fail "staged chunks are not pinned"
fetched=$(stat_of mnt 'j["repo"]["chunks_fetched"]')
"$SRC/tools/boot-sample-vm.sh" mnt/guest/latest/guest.qcow2 -snapshot >/dev/null
[ "$(stat_of mnt 'j["repo"]["chunks_fetched"]')" = "$fetched" ] || fail "boot after prestage through the mount read the repository"
$LM umount mnt >/dev/null

note "mount --prestage stages on start"
CACHE_DIR=$WORK/cache6 mount_repo repo mnt --prestage guest@latest
for _ in $(seq 100); do [ "$(stat_of mnt 'j["prestage"]["chunks"]')" -gt 0 ] && break; sleep 0.1; done
[ "$(stat_of mnt 'j["prestage"]["chunks"]')" -gt 0 ] || fail "mount --prestage staged nothing"
$LM umount mnt >/dev/null

note "guest reads are not starved by a long prestage"
mkdir big && head -c $((128 << 20)) /dev/urandom >big/disk.raw && echo cfg >big/vm.vmx
$LM backup repo big --vm big >/dev/null
# A slow repository (200 ms per read) makes the hydration of 1,024 chunks, fetched in 16
# runs of neighbours with one read each, one at a time, last over 3 s.
CACHE_DIR=$WORK/cache7 LIVEMOUNT_REPO_LATENCY_MS=200 mount_repo repo mnt --readahead 0
$LM prestage repo big --cache-dir "$WORK/cache7" --state-dir state --all --threads 1 >/dev/null &
pre=$!
for _ in $(seq 100); do [ "$(stat_of mnt 'j["prestage"]["running"]')" = 1 ] && break; sleep 0.05; done
[ "$(stat_of mnt 'j["prestage"]["running"]')" = 1 ] || fail "prestage did not start"
# Guest reads of chunks the prestage has not reached: each waits 200 ms on the repository,
# and the pre-stager must hold back meanwhile (it counts each time it does).
for i in $(seq 0 4); do
  dd if=mnt/big/latest/disk.raw of=/dev/null bs=4K skip=$(( (127 << 8) - i * 32 )) count=1 \
    iflag=direct status=none || fail "guest read during prestage"
done
[ "$(stat_of mnt 'j["prestage"]["running"]')" = 1 ] || fail "the guest reads waited for the whole prestage"
[ "$(stat_of mnt 'j["prestage"]["yielded_to_guest_reads"]')" -gt 0 ] || fail "the pre-stager never yielded to guest reads"
note "stats show what is left of a running prestage, and the time left"
left=$(stat_of mnt 'j["prestage"]["remaining_bytes"]')
[ "$left" -gt 0 ] && [ "$left" -lt $((128 << 20)) ] || fail "remaining bytes during the prestage: $left"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)" "$(stat_of mnt 'j["prestage"]["seconds_left"]')" ||
  fail "no estimate of the time left"
$LM stats mnt | grep -Eq "^prestage .* running, .* remaining \([0-9]+ chunks\), about [0-9]+ s left" ||
  { $LM stats mnt; fail "stats does not show what is left"; }
wait $pre || fail "prestage --all through the mount"
[ "$(stat_of mnt 'j["prestage"]["remaining_bytes"]')" = 0 ] || fail "bytes remain after the prestage ended"
$LM umount mnt >/dev/null

check_log
echo "profile_prestage: all checks passed"
