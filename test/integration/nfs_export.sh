#!/usr/bin/env bash
# NFS export (nfs-ganesha run by the media agent): the libnfs client lists and reads every
# backup file with the right SHA-256 over NFSv3 and v4; writes over NFS land in the
# overlay; only listed clients get in; and a client's open file handle stays valid while
# the media agent restarts, cleanly and after a SIGKILL.
LM=$1
source "$(dirname "$0")/lib.sh"
nfs_setup
cd "$WORK"
P=21049; MP=21048   # test ports: no clash with a real NFS server
Q="nfsport=$P&mountport=$MP"

mkdir -p vm1
python3 -c "
with open('vm1/disk.img', 'wb') as f:
    for i in range(24): f.write(bytes([i + 1]) * (1 << 20))   # MiB i holds byte i+1
"
printf 'config.version = "8"\nscsi0:0.fileName = "disk.img"\n' >vm1/vm1.vmx
head -c 8684 /dev/urandom >vm1/vm1.nvram
$LM init repo --encryption none >/dev/null
$LM backup repo vm1 --vm vm1 >/dev/null
ID=$($LM list repo --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vms"][0]["backups"][0]["id"])')
MNT=$WORK/mnt

note "mount --export prints what to type on each hypervisor"
mkdir -p mnt
$LM mount repo mnt --cache-dir cache --state-dir state --export --nfs-port $P --mount-port $MP >mount.out
cleanup_hooks+=("force_unmount '$MNT'")
for want in "esxcli storage nfs add" "pool type='netfs'" "pvesm add nfs" "nfs://"; do
  grep -q "$want" mount.out || fail "mount --export did not print '$want'"
done
[ "$(stat_of mnt 'j["export"]["running"]')" = True ] || fail "stats shows no running export"

note "the libnfs client lists and reads the backup files over NFSv3 and NFSv4"
nfs-ls "nfs://127.0.0.1$MNT/vm1?$Q&version=3" >ls3.out
grep -q "$ID" ls3.out || fail "nfs-ls (v3) does not list the backup copy"
nfs-ls "nfs://127.0.0.1/livemount/vm1/$ID?$Q&version=4" >ls4.out
for f in disk.img vm1.vmx vm1.nvram; do
  grep -q " $f\$" ls4.out || fail "nfs-ls (v4) does not list $f"
  want=$(sha256sum <vm1/$f)
  got=$(nfs-cat "nfs://127.0.0.1$MNT/vm1/$ID/$f?$Q&version=3" | sha256sum)
  [ "$got" = "$want" ] || fail "$f read over NFSv3 differs"
  got=$(nfs-cat "nfs://127.0.0.1/livemount/vm1/$ID/$f?$Q&version=4" | sha256sum)
  [ "$got" = "$want" ] || fail "$f read over NFSv4 differs"
done

note "a client holds the file open while the media agent restarts"
qio_open "nfs://127.0.0.1$MNT/vm1/$ID/disk.img"
qio "read -P 0x03 2M 1M"; qio_wait 1
qio "write -P 0xaa 5M 64k"; qio_wait 2
# Writes over NFS land in the overlay, visible through the mount itself.
python3 -c "
d = open('$MNT/vm1/$ID/disk.img', 'rb').read()
assert d[5 << 20:(5 << 20) + 65536] == b'\xaa' * 65536 and d[(5 << 20) + 65536] == 6, 'NFS write not in the overlay'"

$LM umount mnt | grep -q "stopped the NFS export" || fail "umount did not stop the export"
pgrep -f -- "-f $WORK/state/export/ganesha.conf" >/dev/null && fail "nfs-ganesha still runs after umount"
$LM mount repo mnt --cache-dir cache --state-dir state --export --nfs-port $P --mount-port $MP >/dev/null
qio "read -P 0x05 4M 1M"; qio_wait 3          # the handle from before the restart
qio "read -P 0xaa 5M 64k"; qio_wait 4         # ... sees its own write

note "... and after the media agent is killed"
PID=$(getfattr --only-values -n user.livemount.pid mnt)
kill -9 "$PID"
for _ in $(seq 50); do pgrep -f -- "-f $WORK/state/export/ganesha.conf" >/dev/null || break; sleep 0.1; done
pgrep -f -- "-f $WORK/state/export/ganesha.conf" >/dev/null && fail "nfs-ganesha outlived its killed media agent"
fusermount3 -u -z mnt
$LM mount repo mnt --cache-dir cache --state-dir state --export --nfs-port $P --mount-port $MP >/dev/null
qio "read -P 0x18 23M 1M"; qio_wait 5
qio "read -P 0xaa 5M 64k"; qio_wait 6
qio_close >qio.log
grep -qiE 'stale|error|failed' qio.log && { cat qio.log >&2; fail "a handle went stale"; }

note "export --stop, then export again with only another client allowed"
$LM export --stop mnt | grep -q "stopped" || fail "export --stop"
$LM export mnt --nfs-port $P --mount-port $MP --client 192.0.2.77 >export.out
grep -q "clients allowed: 192.0.2.77" export.out || fail "export does not name its clients"
nfs-ls "nfs://127.0.0.1$MNT?$Q&version=3" >/dev/null 2>&1 && fail "a client not listed could mount"
expect_fail "already exported" $LM export mnt --nfs-port $P --mount-port $MP
$LM export --stop mnt >/dev/null

note "errors: a port in use, a directory that is not a mount"
# It accepts and closes every connection, so that probes never fill its backlog; it lives
# until killed below (or at exit).
python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $P)); s.listen(16); s.settimeout(600)
while True:
    c, _ = s.accept(); c.close()" &
BLOCKER=$!
cleanup_hooks+=("kill $BLOCKER 2>/dev/null")
# Taken once it accepts (a loaded machine starts python slowly).
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$P) 2>/dev/null && break; sleep 0.1; done
expect_fail "port $P" $LM export mnt --nfs-port $P --mount-port $MP
# mount --export with the port taken: the mount does not stay behind.
mkdir -p mnt2
cleanup_hooks+=("force_unmount '$WORK/mnt2'")
expect_fail "port $P" $LM mount repo mnt2 --cache-dir cache2 --state-dir state2 --export --nfs-port $P --mount-port $MP
sleep 0.5
mountpoint -q mnt2 && fail "a failed mount --export left its mount behind"
pgrep -f -- "mount repo mnt2" >/dev/null && fail "a failed mount --export left its media agent running"
kill $BLOCKER
expect_fail "not a livemount mount" $LM export "$WORK" --nfs-port $P --mount-port $MP

$LM umount mnt >/dev/null
$LM verify repo --read-data >/dev/null || fail "the repository changed"
check_log "stale nfs-ganesha|killing it"
echo "nfs_export: all checks passed"
