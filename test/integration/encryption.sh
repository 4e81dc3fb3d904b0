#!/usr/bin/env bash
# Encryption at rest from the command line: a new repository is encrypted unless told
# otherwise; passwords come from --password-file, LIVEMOUNT_PASSWORD_FILE or
# LIVEMOUNT_PASSWORD (in that order); a wrong password is one line and changes nothing;
# key slots can be added, removed and changed; nothing of the VM is readable in the
# repository; a changed byte of ciphertext is EIO through the mount and named by verify.
LM=$1
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir vm
head -c $((2 << 20)) /dev/urandom >vm/disk.raw   # 16 chunks of 128 KiB, stored raw
python3 -c "print('\n'.join('LIVEMOUNT-PLAINTEXT-MARKER %d' % i for i in range(20000)))" >vm/guest-notes.txt
echo "first password" >pw1
echo "second password" >pw2
unset LIVEMOUNT_PASSWORD LIVEMOUNT_PASSWORD_FILE

note "init: encrypted by default, and never without a password"
expect_fail "needs a password" $LM init repo </dev/null
$LM init repo --password-file pw1 >/dev/null
grep -q '"cipher": "aes-256-gcm"' repo/config || fail "config does not say aes-256-gcm"
[ "$(ls repo/keys | wc -l)" = 1 ] || fail "expected one key slot"
[ "$(stat -c %a repo/keys/*)" = 400 ] || fail "key slot is not mode 0400"
$LM init plain --encryption none >/dev/null 2>err
grep -q "warning: plain is not encrypted" err || fail "init --encryption none does not warn"
grep -q '"version": 1' plain/config || fail "an unencrypted repository is not format 1"

note "passwords: the flag before or after the command, the file, the variable"
$LM --password-file pw1 backup repo vm --vm v >/dev/null
$LM list repo --password-file pw1 >/dev/null
LIVEMOUNT_PASSWORD_FILE=pw1 $LM list repo >/dev/null
LIVEMOUNT_PASSWORD="first password" $LM list repo >/dev/null
LIVEMOUNT_PASSWORD=wrong $LM list repo --password-file pw1 >/dev/null || fail "--password-file does not come first"
LIVEMOUNT_PASSWORD=wrong LIVEMOUNT_PASSWORD_FILE=pw1 $LM list repo >/dev/null || fail "the file does not come before the variable"
expect_fail "is encrypted: give its password" $LM list repo </dev/null
expect_fail "wrong password" $LM list repo --password-file pw2
expect_fail "wrong password" $LM backup repo vm --vm v --password-file pw2
expect_fail "no-such-file" $LM list repo --password-file no-such-file
[ "$(ls repo/backups/v | wc -l)" = 1 ] || fail "a refused backup left something behind"

note "nothing of the VM is readable in the repository"
! grep -rqa "PLAINTEXT-MARKER" repo || fail "guest data is readable in the repository"
! grep -rqa "guest-notes" repo || fail "a file name is readable in the repository"
! grep -rqa "disk.raw" repo || fail "a file name is readable in the repository"
export LIVEMOUNT_PASSWORD_FILE=$WORK/pw1
$LM verify repo --read-data >/dev/null || fail "verify of the encrypted repository failed"
$LM restore repo v restored >/dev/null
cmp -s restored/disk.raw vm/disk.raw && cmp -s restored/guest-notes.txt vm/guest-notes.txt || fail "restore differs"

note "an unencrypted repository is refused a backup when a password is meant"
expect_fail "not encrypted, yet a password was given" $LM backup plain vm --vm v
(unset LIVEMOUNT_PASSWORD_FILE; $LM backup plain vm --vm v >/dev/null) || fail "backup into plain failed"

note "key slots"
$LM key add repo --new-password-file pw2 >/dev/null
LIVEMOUNT_PASSWORD_FILE=pw2 $LM list repo >/dev/null || fail "the added password does not open"
$LM key list repo --json >keys.json
[ "$(json_get keys.json 'len(j)')" = 2 ] || fail "key list does not show two keys"
current=$(json_get keys.json '[k["id"] for k in j if k["current"]][0]')
other=$(json_get keys.json '[k["id"] for k in j if not k["current"]][0]')
expect_fail "refusing to remove it" $LM key remove repo "$current"
expect_fail "at least 4 characters" $LM key remove repo abc
$LM key remove repo "${other:0:8}" >/dev/null
expect_fail "wrong password" env LIVEMOUNT_PASSWORD_FILE=pw2 $LM list repo
$LM key passwd repo --new-password-file pw2 >/dev/null
expect_fail "wrong password" $LM list repo
export LIVEMOUNT_PASSWORD_FILE=$WORK/pw2
$LM list repo >/dev/null || fail "the changed password does not open"
[ "$(ls repo/keys | wc -l)" = 1 ] || fail "passwd left more than one key slot"
expect_fail "not encrypted" $LM key list plain

note "a live mount of the encrypted repository; a changed byte is EIO and named by verify"
mkdir mnt0
expect_fail "wrong password" env LIVEMOUNT_PASSWORD_FILE=pw1 $LM mount repo mnt0 --cache-dir c0 --state-dir s0
! mountpoint -q mnt0 || fail "a mount with a wrong password is mounted"
mount_repo repo mnt --readahead 0
cmp -s mnt/v/latest/disk.raw vm/disk.raw || fail "the mount serves other bytes"
$LM umount mnt >/dev/null
pack=$(grep -l . repo/packs/*/*.pack | head -1)
chmod u+w "$pack"
# The first record's ciphertext, well inside its first chunk (disk.raw is backed up first).
python3 - "$pack" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(16 + 48 + 12 + 5000); b = f.read(1); f.seek(-1, 1); f.write(bytes([b[0] ^ 1]))
PY
CACHE_DIR=$WORK/cache2 mount_repo repo mnt2 --readahead 0
rc=0; dd if=mnt2/v/latest/disk.raw of=/dev/null bs=128K count=1 status=none 2>err || rc=$?
[ $rc -ne 0 ] && grep -q "Input/output error" err || fail "changed ciphertext did not give EIO"
dd if=mnt2/v/latest/disk.raw of=part bs=128K skip=15 count=1 status=none || fail "an intact chunk failed"
grep -q "authentication failed" state/livemount.log || fail "the log does not say why"
$LM umount mnt2 >/dev/null
rc=0; $LM verify repo --read-data >verify.out 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "verify passed a changed ciphertext"
grep -q "$(basename "$pack").*authentication failed" verify.out || { cat verify.out; fail "verify does not name the pack"; }
grep -q "used by v@" verify.out || fail "verify does not name the backup copy"
check_log "damaged or missing chunk .*authentication failed"  # the one expected error
echo "encryption: all checks passed"
