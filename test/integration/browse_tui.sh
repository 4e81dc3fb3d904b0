#!/usr/bin/env bash
# The file manager, driven in tmux on an 80x24 terminal: volumes with their filesystems,
# Enter into directories, Space marks a file and a folder (recursively, with the footer's
# total), `s` saves the marked set into the VM's profile; an unreadable volume is shown as
# such. The profile then holds exactly the marked files.
LM=$1
source "$(dirname "$0")/lib.sh"
cd "$WORK"
command -v tmux >/dev/null || fail "tmux is not installed (tools/install-deps.sh test)"

mkdir -p tree/etc tree/var/db vm
echo "UUID=1234 / ext4 defaults 0 1" >tree/etc/fstab
head -c 2000000 /dev/urandom >tree/var/db/data.bin
seq 1 100000 >tree/var/db/log.txt
for i in $(seq 2000); do echo "file $i" >tree/etc/many-$i.conf; done   # a big directory
mkfs.ext4 -q -d tree -L guestroot part.img 48M >/dev/null
python3 - <<'PY'
import struct
part = open("part.img", "rb").read()
disk = bytearray(1 << 20) + bytearray(part) + bytearray(1 << 20)
disk[446:462] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, len(part) // 512)
disk[462:478] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048 + len(part) // 512, 2048)  # no filesystem
disk[510:512] = b"\x55\xaa"
open("disk.raw", "wb").write(disk)
PY
qemu-img convert -q -c -O qcow2 disk.raw vm/disk.qcow2
$LM init repo --encryption none >/dev/null
$LM backup repo vm --vm tui >/dev/null

S=lm-browse-$$
cleanup_hooks+=("tmux kill-session -t $S 2>/dev/null")
tmux new-session -d -s "$S" -x 80 -y 24 "$LM browse repo tui --state-dir $WORK/state; echo BROWSE-EXIT-\$?; sleep 30"
screen() { tmux capture-pane -p -t "$S"; }
wait_for() {  # wait_for TEXT: until the screen shows it
  for _ in $(seq 100); do screen | grep -qF -- "$1" && return 0; sleep 0.1; done
  screen >&2; fail "the screen never showed '$1'"
}
keys() { tmux send-keys -t "$S" "$@"; sleep 0.2; }

wait_for "livemount browse tui@"
wait_for "sda1"
screen | grep -E 'sda1/ +ext4 guestroot' >/dev/null || { screen >&2; fail "sda1 is not shown as ext4 guestroot"; }
screen | grep -F 'sda2' | grep -q 'unreadable' || { screen >&2; fail "the volume without a filesystem is not shown as unreadable"; }
keys Enter
wait_for "/sda1"
wait_for "etc/"
keys Enter                                   # listing order: etc, lost+found, var
wait_for "fstab"
screen | grep -q "many-1999.conf" || true
[ "$(screen | wc -l)" -le 24 ] || fail "the screen does not fit 80x24"
keys Space
wait_for "marked: 1 files"
keys Left
wait_for "etc/"
keys Down Down Space                         # var/, recursively: data.bin and log.txt
wait_for "marked: 3 files"
keys s
wait_for "prestage tui@"
keys n
wait_for "BROWSE-EXIT-0"

python3 - "$WORK/state/profiles/tui.json" <<'PY'
import json, sys
notes = sorted(e["note"] for e in json.load(open(sys.argv[1]))["entries"] if e["source"] == "guest-file")
want = ["/sda1/etc/fstab", "/sda1/var/", "/sda1/var/db/", "/sda1/var/db/data.bin", "/sda1/var/db/log.txt"]
assert notes == want, notes
PY
tmux kill-session -t "$S"

note "browse without a terminal is a clear error"
expect_fail "needs a terminal" $LM browse repo tui </dev/null
echo "browse_tui: all checks passed"
