#!/usr/bin/env bash
# Every command on a repository in an S3 bucket of a real Ceph RADOS Gateway (the cluster
# the ctest fixture started; LM_CEPH_DIR): init, backup, list, verify, restore, mount,
# prestage, profile, ls, cat, forget, prune, stats, key; two data agents backing up at once,
# two media agents with their own caches reading while a backup writes; clear one-line
# errors for wrong credentials, a missing bucket and a bad location.
LM=$1
source "$(dirname "$0")/lib.sh"
s3_setup
cd "$WORK"
R=$(s3_repo repo)
echo "s3 test password" >pw
export LIVEMOUNT_PASSWORD_FILE=$WORK/pw

note "bad locations and credentials give one line"
expect_fail "expected s3:http" $LM list "s3:ftp://127.0.0.1/bucket"
expect_fail "not a valid bucket name" $LM list "s3:$LM_S3_ENDPOINT/Bad_Bucket!"
expect_fail "does not exist" $LM list "$(s3_repo missing)"
AWS_SECRET_ACCESS_KEY=wrong expect_fail "access denied" $LM list "$R"
LIVEMOUNT_S3_CONNECTIONS=0 expect_fail "LIVEMOUNT_S3_CONNECTIONS: expected a number from 1 to 256" $LM list "$R"
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; HOME=$WORK expect_fail "no S3 credentials" $LM list "$R")

note "credentials from a profile in ~/.aws/credentials"
mkdir -p home/.aws
printf '[default]\naws_access_key_id = nobody\naws_secret_access_key = x\n[lm]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
  "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >home/.aws/credentials

note "init (encrypted), then every flavour backed up and restored byte for byte"
$LM init "$R" >init.out || { cat init.out; fail "init on S3"; }
grep -q "encrypted" init.out || fail "init did not encrypt"
expect_fail "already a livemount repository" $LM init "$R"
make_vm_dirs vms 16
for vm in raw qcow2 vmdk-sparse vmdk-flat; do
  $LM backup "$R" "vms/$vm" --vm "$vm" >"out-$vm" || { cat "out-$vm"; fail "backup $vm to S3"; }
done
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; HOME=$WORK/home AWS_PROFILE=lm $LM list "$R" >list.txt) ||
  fail "list with credentials from a profile"
for vm in raw qcow2 vmdk-sparse vmdk-flat; do grep -q "^$vm " list.txt || fail "list lacks $vm"; done
LIVEMOUNT_REPOSITORY=$R $LM list qcow2 | grep -q "^qcow2 " || fail "list VM with LIVEMOUNT_REPOSITORY on S3"
for vm in raw qcow2 vmdk-sparse vmdk-flat; do
  $LM restore "$R" "$vm" "restored/$vm" >/dev/null || fail "restore $vm from S3"
  same_tree "vms/$vm" "restored/$vm"
done
$LM verify "$R" --read-data >verify.out || { cat verify.out; fail "verify --read-data on S3"; }
$LM key list "$R" | grep -q "key this password opened" || fail "key list on S3"

note "the objects in the bucket are sealed: no VM file name in any of them"
python3 - "$LM_S3_ENDPOINT" "$(s3_bucket_of "$R")" <<'PY' || fail "a plaintext name is in the bucket"
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2]):
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket=sys.argv[2], Key=o["Key"])["Body"].read()
        if b"disk.qcow2" in body or b"vm.vmx" in body:
            sys.exit("plaintext in " + o["Key"])
PY

note "guest files: ls and cat through the repository"
mkdir -p tree/etc && echo "UUID=1 / ext4 defaults 0 1" >tree/etc/fstab && seq 1 50000 >tree/etc/numbers
mkdir guestvm && mkfs.ext4 -q -d tree guestvm/disk.raw 16M >/dev/null
$LM backup "$R" guestvm --vm guest >/dev/null
$LM ls "$R" "guest:/" >ls.out || { cat ls.out; fail "ls on S3"; }
vol=/$(awk '/ext4/ {print $1; exit}' ls.out)
[ "$vol" != / ] || { cat ls.out; fail "ls found no ext4 volume"; }
$LM cat "$R" "guest:$vol/etc/numbers" | cmp -s - tree/etc/numbers || fail "cat of a guest file from S3"

note "mount: reads byte for byte, request counts by kind"
mount_repo "$R" mnt
cmp -s mnt/qcow2/latest/disk.qcow2 vms/qcow2/disk.qcow2 || fail "read through the mount of S3"
cmp -s mnt/vmdk-flat/latest/vm.nvram vms/vmdk-flat/vm.nvram || fail "nvram through the mount of S3"
$LM stats mnt --json >st.json
[ "$(json_get st.json 'j["requests"]["guest"]["gets"]')" -gt 0 ] || { cat st.json; fail "stats: no guest GETs counted"; }
$LM stats mnt | grep -q "^s3 " || fail "stats: no object-store lines"

note "prestage and profile export from S3"
$LM profile export "$R" raw prof.json >/dev/null || fail "profile export on S3"
guest_gets=$(stat_of mnt 'j["requests"]["guest"]["gets"]')
# A profile of disk blocks nothing has read yet (the structural one of this VM names only its
# vm.xml, which the mount already read to make the copy's views), then --all.
cat >disk-profile.json <<'JSON'
{"format": "livemount-profile", "version": 1, "vm": "raw", "created_ns": 0,
 "entries": [{"file": "disk.raw", "ranges": [[0, 1048576]], "source": "learned", "order": 0}]}
JSON
$LM prestage "$R" raw --mount mnt --profile "$WORK/disk-profile.json" >pre.out || { cat pre.out; fail "prestage on S3"; }
grep -q " 0 failed" pre.out || { cat pre.out; fail "prestage failures"; }
[ "$(stat_of mnt 'j["requests"]["prestage"]["gets"]')" -gt 0 ] || fail "stats: no prestage GETs counted"
$LM prestage "$R" raw --mount mnt --all --state-dir "$WORK/state" >pre.out || { cat pre.out; fail "prestage --all on S3"; }
grep -q " 0 failed" pre.out || { cat pre.out; fail "prestage --all failures"; }
[ "$(stat_of mnt 'j["requests"]["hydrate"]["gets"]')" -gt 0 ] || fail "stats: no hydrate GETs counted"
[ "$(stat_of mnt 'j["requests"]["guest"]["gets"]')" = "$guest_gets" ] || fail "stats: pre-staging counted as guest GETs"
# Chunk reads are guest, prestage or hydrate GETs ("other" is the agent's own bookkeeping:
# leases, listings).
chunk_gets='sum(k["gets"] for n, k in j["requests"].items() if n != "other")'
before=$(stat_of mnt "$chunk_gets")
drop_caches
cmp -s mnt/raw/latest/disk.raw vms/raw/disk.raw || fail "read after prestage"
after=$(stat_of mnt "$chunk_gets")
[ "$after" = "$before" ] || { $LM stats mnt; fail "reads after prestage --all still went to the object store ($before -> $after GETs)"; }

note "two data agents back up at once while two media agents read"
CACHE_DIR=$WORK/cache2 STATE_DIR=$WORK/state2 mount_repo "$R" mnt2
( cmp -s mnt/vmdk-sparse/latest/disk.vmdk vms/vmdk-sparse/disk.vmdk &&
  cmp -s mnt2/vmdk-sparse/latest/disk.vmdk vms/vmdk-sparse/disk.vmdk ) & reader=$!
$LM backup "$R" vms/qcow2 --vm c1 >c1.out 2>&1 & p1=$!
$LM backup "$R" vms/vmdk-flat --vm c2 >c2.out 2>&1 & p2=$!
wait $p1 || { cat c1.out; fail "concurrent backup 1"; }
wait $p2 || { cat c2.out; fail "concurrent backup 2"; }
wait $reader || fail "a media agent read wrong bytes during the backups"
$LM restore "$R" c1 r-c1 >/dev/null && cmp -s r-c1/disk.qcow2 vms/qcow2/disk.qcow2 || fail "restore of concurrent backup 1"
$LM restore "$R" c2 r-c2 >/dev/null && same_tree vms/vmdk-flat r-c2
# New data backed up after the mount started: its chunks are in index objects the mount
# finds with a listing of what is newer than it knows (start-after).
mkdir -p fresh && head -c $((4 << 20)) /dev/urandom >fresh/disk.raw
$LM backup "$R" fresh --vm fresh >/dev/null
for _ in $(seq 50); do [ -e mnt/fresh/latest/disk.raw ] && break; sleep 0.2; done
cmp -s mnt/fresh/latest/disk.raw fresh/disk.raw || fail "a running mount reads new data backed up after it started"

note "forget and prune while a mount holds a copy"
head -c $((2 << 20)) /dev/urandom | dd of=vms/raw/disk.raw bs=1M seek=3 conv=notrunc status=none
sleep 1.1
$LM backup "$R" vms/raw --vm raw >/dev/null
exec 3<mnt2/raw/latest/disk.raw  # the older copy: its lease holds it
first=$($LM list "$R" raw --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vms"][0]["backups"][0]["id"])')
exec 3<&-
exec 3<"mnt2/raw/$first/disk.raw"
$LM forget "$R" raw --keep-last 1 --prune --max-unused 0% >forget.out || { cat forget.out; fail "forget --prune on S3"; }
[ "$($LM list "$R" raw --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vms"][0]["backups"]))')" = 2 ] ||
  fail "forget removed the copy a media agent holds"
cmp -s <(cat <&3) restored/raw/disk.raw || fail "the held copy reads differ after prune"
exec 3<&-

note "prune while a backup writes and a mount reads: prune refuses at once, nothing is lost"
mkdir -p big && head -c $((192 << 20)) /dev/urandom >big/disk.raw
$LM backup "$R" big --vm big >big.out 2>&1 & bk=$!
python3 - "$LM_S3_ENDPOINT" "$(s3_bucket_of "$R")" <<'PY' || fail "the backup took no lock within 20 s"
import sys, time, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
for _ in range(200):
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=sys.argv[2], Prefix="repo/locks/").get("Contents", [])]
    if any("/shared-" in k for k in keys):
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
PY
( cmp -s "mnt2/raw/$first/disk.raw" restored/raw/disk.raw ) & rd=$!
expect_fail "the repository is in use" $LM prune "$R" --max-unused 0%
wait $bk || { cat big.out; fail "the backup failed while prune was refused"; }
wait $rd || fail "the mount read wrong bytes while prune was refused"
$LM prune "$R" --max-unused 0% >prune2.out || { cat prune2.out; fail "prune after the backup"; }
$LM restore "$R" big r-big >/dev/null && cmp -s r-big/disk.raw big/disk.raw || fail "the copy backed up during the refused prune"
cmp -s "mnt2/raw/$first/disk.raw" restored/raw/disk.raw || fail "the mount reads wrong bytes after prune"
$LM stats "$R" --json >rs.json || fail "stats REPO on S3"
$LM verify "$R" --read-data >v2.out || { cat v2.out; fail "verify after prune on S3"; }
$LM umount mnt2 >/dev/null
$LM umount mnt >/dev/null

note "a media agent started again reads its metadata from its cache directory, not the bucket"
CACHE_DIR=$WORK/cache4 STATE_DIR=$WORK/state4 mount_repo "$R" mnt4
cmp -s mnt4/c1/latest/disk.qcow2 vms/qcow2/disk.qcow2 || fail "read through the first mount with a new cache"
[ "$(STATE_DIR=$WORK/state4 stat_of mnt4 'j["metadata"]["misses"]')" -gt 0 ] || fail "the first mount read no metadata object?"
$LM umount mnt4 >/dev/null
CACHE_DIR=$WORK/cache4 STATE_DIR=$WORK/state4 mount_repo "$R" mnt4
cmp -s mnt4/c1/latest/disk.qcow2 vms/qcow2/disk.qcow2 || fail "read through the mount started again"
STATE_DIR=$WORK/state4 $LM stats mnt4 --json >st4.json
[ "$(json_get st4.json 'j["metadata"]["misses"]')" = 0 ] || { cat st4.json; fail "the mount started again read metadata objects from the bucket"; }
[ "$(json_get st4.json 'j["metadata"]["hits"]')" -gt 0 ] || fail "the mount started again used no local copy"
$LM stats mnt4 | grep -q "^metadata .* 0 read from the repository" || fail "stats does not show the metadata copies"
$LM umount mnt4 >/dev/null
check_log
STATE_DIR=$WORK/state4 check_log
