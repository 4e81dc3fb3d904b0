#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: installs what is missing, builds,
# makes a bootable sample VM, backs it up into an encrypted repository, verifies it,
# live-mounts it and
# boots the VM in QEMU straight from the mount (its writes go to the overlay), learns its
# profile, pre-stages a fresh read-cache and boots it again with no repository reads,
# exports the mount over NFS and boots it from nfs://, scrapes the media agent's metrics,
# restores the copy with its overlay (back to production) and boots it from local disk,
# turns the live copy into a new backup copy, runs it with `livemount run` (QEMU), shows
# the copy's views for the other hypervisor family and the ESXi commands, then restores the
# original for comparison.
#   tools/demo.sh            (work directory: $LIVEMOUNT_DEMO_DIR or /tmp/livemount-demo)
#   tools/demo.sh --s3       the same with the repository in an S3 bucket of a Ceph RADOS
#                            Gateway that the demo starts on this host (and stops at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
S3=0
case "${1:-}" in
  --s3) S3=1 ;;
  "") ;;
  *) echo "usage: tools/demo.sh [--s3]" >&2; exit 2 ;;
esac
tools/install-deps.sh build demo $([ $S3 = 1 ] && echo s3)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target livemount >/dev/null
LM=$SRC/build/tools/livemount
DEMO=${LIVEMOUNT_DEMO_DIR:-/tmp/livemount-demo}
fusermount3 -u -z "$DEMO/mnt" 2>/dev/null || true
rm -rf "$DEMO" && mkdir -p "$DEMO" && cd "$DEMO"
export LIVEMOUNT_CACHE_DIR=$DEMO/cache  # backup's chunk index too: nothing left outside $DEMO
RPCBIND_PID=""  # rpcbind, when the NFS export started it (stopped at the end, by pid)
finish() {
  "$LM" umount "$DEMO/mnt" >/dev/null 2>&1 || fusermount3 -u -z "$DEMO/mnt" 2>/dev/null || true
  [ -z "$RPCBIND_PID" ] || kill "$RPCBIND_PID" 2>/dev/null || true
  [ $S3 = 0 ] || bash "$SRC/test/integration/ceph/cluster.sh" stop "$DEMO/ceph" || true
}
trap finish EXIT

step() {  # step NAME COMMAND...: runs a command and says how long it took
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  "$@"
  printf '   [%s: %.2f s]\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)"
}

REPO=repo
if [ $S3 = 1 ]; then
  echo "== starting a one-host Ceph cluster with a RADOS Gateway in $DEMO/ceph"
  bash "$SRC/test/integration/ceph/cluster.sh" start "$DEMO/ceph"
  source "$DEMO/ceph/s3.env"   # the endpoint and the S3 user's keys (AWS_ACCESS_KEY_ID, ...)
  REPO=s3:$LM_S3_ENDPOINT/livemount-demo/repo
fi
echo "== making a bootable sample VM in $DEMO/vm (qcow2 disk and libvirt XML)"
step "make sample VM" "$SRC/tools/make-sample-vm.sh" vm --flavour kvm --name sample
echo "== livemount init (encrypted: the password comes from a file here, as a service's would)"
head -c 24 /dev/urandom | base64 >password
chmod 600 password
export LIVEMOUNT_PASSWORD_FILE=$DEMO/password
step init "$LM" init "$REPO"
"$LM" key list "$REPO"
echo "== livemount backup (first: everything is new)"
step backup "$LM" backup "$REPO" vm --vm sample
echo "== livemount backup (again: dedup stores nothing new)"
step "backup again" "$LM" backup "$REPO" vm --vm sample
echo "== livemount list"
"$LM" list "$REPO"
echo "== livemount verify --read-data"
step verify "$LM" verify "$REPO" --read-data
echo "== livemount mount (media agent, read-cache in $DEMO/cache)"
mkdir mnt
step mount "$LM" mount "$REPO" mnt --cache-dir "$DEMO/cache" --state-dir "$DEMO/state"
ls -l mnt/sample/latest/
echo "== boot the VM in QEMU (TCG) straight from the mount; its writes go to the overlay"
step "boot from the live mount" "$SRC/tools/boot-sample-vm.sh" mnt/sample/latest/sample.qcow2
echo "== livemount stats"
"$LM" stats mnt
echo "== livemount umount; learn the VM's profile from that boot"
step umount "$LM" umount mnt
step "profile learn" "$LM" profile learn sample --state-dir "$DEMO/state"
echo "== pre-stage a fresh, empty read-cache from the profile, mount, boot again"
step prestage "$LM" prestage "$REPO" sample --cache-dir "$DEMO/cache2" --state-dir "$DEMO/state"
echo "   (this time the media agent reads a configuration file, as its systemd unit reads"
echo "    /etc/livemount/livemount.conf, and serves Prometheus metrics)"
cat >livemount.conf <<CONF
repository = "$([ $S3 = 1 ] && echo "$REPO" || echo "$DEMO/$REPO")"
password-file = "$DEMO/password"
mountpoint = "$DEMO/mnt"
cache-dir = "$DEMO/cache2"
state-dir = "$DEMO/state"
metrics = "127.0.0.1:0"
expire-after = "8h"
CONF
sed 's/^/   | /' livemount.conf
"$LM" --config livemount.conf mount | tee mount.out
METRICS=$(grep -o 'http://127.0.0.1:[0-9]*/metrics' mount.out)
before=$("$LM" stats mnt --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["repo"]["chunks_fetched"])')
step "boot after prestage (finds what it wrote before)" "$SRC/tools/boot-sample-vm.sh" mnt/sample/latest/sample.qcow2
after=$("$LM" stats mnt --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["repo"]["chunks_fetched"])')
echo "   repository chunks read during the pre-staged boot: $((after - before)) (the cold boot read all it needed from the repository)"
echo "== scrape the media agent's metrics, as Prometheus would ($METRICS)"
curl -fsS "$METRICS" | grep -E '^livemount_(cache_(hits|misses)_total|repository_fetched_chunks_total|guest_read_duration_seconds_(count|sum)|guest_reads_total|overlay_bytes|expiry_timestamp_seconds)' | sed 's/^/   /'
"$LM" expire mnt
echo "== export the mount over NFS (nfs-ganesha) and boot the VM from nfs://, as a hypervisor's datastore would"
rpcbind_before=0; (exec 3<>/dev/tcp/127.0.0.1/111) 2>/dev/null && rpcbind_before=1
step export "$LM" export mnt --nfs-port 20490 --mount-port 20048
[ $rpcbind_before = 1 ] || RPCBIND_PID=$(pgrep -x rpcbind || true)
id=$(readlink mnt/sample/latest)
step "boot over NFS" "$SRC/tools/boot-sample-vm.sh" "nfs://127.0.0.1$DEMO/mnt/sample/$id/sample.qcow2"
step "export --stop" "$LM" export mnt --stop  # nfs-ganesha keeps the files it served open
"$LM" list "$REPO" --state-dir "$DEMO/state"
echo "== back to production: restore the copy with what the VM wrote on the mount (its overlay),"
echo "   while the media agent keeps serving it, and boot it from local disk"
step "restore --with-overlay" "$LM" --config livemount.conf restore sample@latest production --with-overlay
step "boot the restored copy (finds its writes from the mount)" "$SRC/tools/boot-sample-vm.sh" production/sample.qcow2
echo "== a live copy becomes a new backup copy: only what the VM wrote is read"
step "backup --from-mount" "$LM" --config livemount.conf backup --from-mount mnt sample@latest --vm sample-recovered
echo "== one command from a backup copy to a running VM: livemount run (QEMU here; libvirt by default)"
echo "   the recovered VM gets a new name, UUID and MAC addresses, on an isolated network"
step run "$LM" --config livemount.conf run sample --hypervisor qemu --prestage | tee run.out
SERIAL=$(sed -n 's/^  serial log: //p' run.out)
for _ in $(seq 1200); do grep -aq "LIVEMOUNT-GUEST: powering off" "$SERIAL" 2>/dev/null && break; sleep 0.1; done
grep -a "LIVEMOUNT-GUEST" "$SERIAL" | sed 's/^/   /'
grep -aq "LIVEMOUNT-GUEST: data ok" "$SERIAL" || { echo "demo: the VM started by livemount run did not verify its data" >&2; exit 1; }
"$LM" --config livemount.conf run --list
step "run --stop --discard" "$LM" --config livemount.conf run --stop sample-livemount --discard
echo "== any backup on any hypervisor: the KVM copy also shows a raw view, a VMDK descriptor and a .vmx"
ls -l mnt/sample/latest/ | sed 's/^/   /'
qemu-img compare -q -f vmdk -F qcow2 mnt/sample/latest/sample.vmdk vm/sample.qcow2 &&
  echo "   qemu-img: sample.vmdk (the descriptor over sample.raw) reads as the backed-up qcow2"
"$LM" --config livemount.conf run sample --hypervisor esxi --nfs-host "$(hostname -I | awk '{print $1}')" | sed 's/^/   /'
step umount "$LM" umount mnt
echo "== the backup copy itself never changed"
step verify "$LM" verify "$REPO" --read-data
echo "== for comparison: a plain restore of the backup copy, then a boot from local disk"
step restore "$LM" restore "$REPO" sample@latest restored
step "boot from the restored copy" "$SRC/tools/boot-sample-vm.sh" restored/sample.qcow2 -snapshot
echo "== retention: keep the newest copy, forget the others and prune what only they used"
step "forget --prune" "$LM" forget "$REPO" sample --keep-last 1 --prune
step "verify after prune" "$LM" verify "$REPO" --read-data
echo "== done"
