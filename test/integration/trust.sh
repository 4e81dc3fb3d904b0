#!/usr/bin/env bash
# Trust: what an attacker or a careless user can do to livemount's inputs, and what must
# never follow: nothing written outside DESTDIR, nothing world-readable, no path outside
# the state directory, no mount on a mount, one line on stderr and no abort for bad input.
LM=$1
source "$(dirname "$0")/lib.sh"
cd "$WORK"
umask 022   # the common default: livemount must not depend on a careful umask

# Rewrites a backup copy's backup.json with a Python edit of `m` and fixes its checksum.
edit_manifest() {  # edit_manifest REPO VM ID PYTHON
  python3 - "$1/backups/$2/$3/backup.json" "$4" <<'PY'
import hashlib, json, sys
p = sys.argv[1]
m = json.load(open(p))
exec(sys.argv[2])
data = (json.dumps(m, indent=1) + "\n").encode()
open(p, "wb").write(data)
open(p + ".sha256", "w").write(hashlib.sha256(data).hexdigest() + "\n")
PY
}

make_vm_dirs vms 6
$LM init repo --encryption none >/dev/null
$LM backup repo vms/vmdk-flat --vm flat >/dev/null

note "files are owner-only whatever the umask"
mkdir mnt
mount_repo repo mnt
cat mnt/flat/latest/vm.vmx >/dev/null
echo written >mnt/flat/latest/new.txt
"$LM" umount mnt >/dev/null
"$LM" profile learn flat --state-dir "$WORK/state" >/dev/null
bad=$(find repo cache state ! -type l -perm /077 | head -5)
[ -z "$bad" ] || { echo "$bad" >&2; fail "world- or group-accessible files (above)"; }

note "restore never writes below a symlink of the manifest"
id=$($LM list repo flat --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vms"][0]["backups"][0]["id"])')
cp -a repo evil
mkdir outside
edit_manifest evil flat "$id" "
f = next(e for e in m['files'] if e['path'] == 'vm.vmx')
m['files'].insert(0, {'path': 'esc', 'type': 'symlink', 'mode': 511, 'uid': 0, 'gid': 0,
                      'mtime_ns': 0, 'atime_ns': 0, 'size': len('$WORK/outside'), 'target': '$WORK/outside'})
g = dict(f); g['path'] = 'esc/planted'; m['files'].insert(1, g)"
rc=0; $LM verify evil >v.out 2>/dev/null || rc=$?
[ $rc -eq 1 ] || fail "verify calls a manifest with an entry below a symlink ok"
grep -q "below a symlink" v.out || { cat v.out; fail "verify does not say what is wrong"; }
expect_fail "below a symlink" $LM restore evil flat out-evil
[ -z "$(ls outside)" ] || fail "restore wrote outside DESTDIR"

note "verify flags duplicate and non-normal paths"
for edit in "m['files'].append(dict(m['files'][-1]))" \
            "m['files'][-1]['path'] = 'logs//./' + m['files'][-1]['path'].split('/')[-1]" \
            "m['files'][-1]['path'] = '../x'"; do
  rm -rf evil && cp -a repo evil
  edit_manifest evil flat "$id" "$edit"
  rc=0; $LM verify evil >v.out 2>/dev/null || rc=$?
  [ $rc -eq 1 ] || fail "verify accepts a manifest after: $edit"
  grep -qE "listed twice|normal form|not below" v.out || { cat v.out; fail "verify does not name the path problem"; }
done

note "restore over a symlinked folder in DESTDIR stays inside DESTDIR"
mkdir -p dest outside2
ln -s "$WORK/outside2" dest/logs
expect_fail "not empty" $LM restore repo flat dest
$LM restore repo flat dest --overwrite >/dev/null
[ -z "$(ls outside2)" ] || fail "restore followed a symlink in DESTDIR"
[ -d dest/logs ] && [ ! -L dest/logs ] || fail "restore did not replace the symlink by the folder"
cmp dest/logs/vmware.log vms/vmdk-flat/logs/vmware.log || fail "restored log differs"

note "names that are not UTF-8 round-trip byte for byte"
mkdir -p odd/$'\xff\xfe-dir'
head -c 300000 /dev/urandom >odd/$'disk-\xe9.raw'
echo cfg >odd/$'\xff\xfe-dir'/$'n\x01\x7f.cfg'
ln -s $'disk-\xe9.raw' odd/$'link-\xc3'
$LM backup repo odd --vm odd --json >b.json || fail "backup of non-UTF-8 names failed"
json_get b.json 'j["backup"]' | grep -q '^odd@' || fail "backup --json lacks the backup id"
$LM list repo --json >/dev/null || fail "list --json failed"
$LM verify repo >/dev/null || fail "verify failed after non-UTF-8 names"
$LM restore repo odd odd-out >/dev/null || fail "restore of non-UTF-8 names failed"
same_tree odd odd-out
[ -z "$(find repo/backups -name '.tmp-*')" ] || fail "a .tmp- directory was left behind"

note "VM names never leave the state directory"
expect_fail "invalid VM name" $LM profile import '../../x' vms/vmdk-flat/vm.vmx --state-dir "$WORK/state"
expect_fail "invalid VM name" $LM profile learn '../../etc' --state-dir "$WORK/state"
[ ! -e "$WORK/x.json" ] || fail "profile import wrote outside the state directory"
expect_fail "invalid VM name" $LM backup repo vms/raw --vm '../up'

note "state directories of earlier versions are migrated"
STATE_DIR=$WORK/old-state mount_repo repo mnt
echo two >mnt/flat/latest/old.txt
"$LM" umount mnt >/dev/null
mv old-state/overlay-meta old-state/overlays/meta   # where up to 0.1 kept it
STATE_DIR=$WORK/old-state mount_repo repo mnt
[ "$(cat mnt/flat/latest/old.txt)" = two ] || fail "overlay lost in the migration"
"$LM" umount mnt >/dev/null
[ -f old-state/overlay-meta/CURRENT ] && [ ! -e old-state/overlays/meta ] || fail "not migrated"

note "a VM named meta has its own overlay, apart from the overlay metadata"
$LM backup repo vms/raw --vm meta >/dev/null
mount_repo repo mnt
echo one >mnt/meta/latest/note.txt
echo two >mnt/flat/latest/note.txt
"$LM" umount mnt >/dev/null
[ -f state/overlay-meta/CURRENT ] || fail "overlay metadata is not in STATE/overlay-meta"
mount_repo repo mnt
[ "$(cat mnt/meta/latest/note.txt)" = one ] && [ "$(cat mnt/flat/latest/note.txt)" = two ] || fail "overlay lost"
"$LM" umount mnt >/dev/null
note "the log file is never opened through a symlink"
mkdir st2 && echo keep >target.txt && ln -s "$WORK/target.txt" st2/livemount.log
rc=0; $LM mount repo mnt --cache-dir "$WORK/cache2" --state-dir "$WORK/st2" >/dev/null 2>m.err || rc=$?
if [ $rc -eq 0 ]; then cleanup_hooks+=("force_unmount '$WORK/mnt'"); fail "mounted with a symlinked log file"; fi
[ "$(cat target.txt)" = keep ] || fail "the log symlink's target was written"

note "the CLI only talks to real livemount mounts"
mkdir fake
setfattr -n user.livemount.control -v "livemount-evil" fake 2>/dev/null || true
setfattr -n user.livemount.pid -v 1 fake 2>/dev/null || true
expect_fail "not a mountpoint" $LM stats fake
expect_fail "not a mountpoint" $LM discard fake flat@latest
expect_fail "not a mountpoint" $LM umount fake

note "mounts: never on a mount, never on a non-empty directory, and a dead agent is cleaned up"
mount_repo repo mnt
expect_fail "already a mountpoint" $LM mount repo mnt --cache-dir "$WORK/cache3" --state-dir "$WORK/st3"
pid=$(getfattr --only-values -n user.livemount.pid mnt)
kill -9 "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
expect_fail "media agent of this mount is gone" $LM stats mnt
expect_fail "media agent is gone" $LM mount repo mnt --cache-dir "$WORK/cache3" --state-dir "$WORK/st3"
$LM umount mnt >u.out || fail "umount does not clean up a dead agent's mount"
grep -q "no longer running" u.out || fail "umount did not say what it cleaned up"
FindMount=$(grep -c " $WORK/mnt " /proc/self/mountinfo || true)
[ "$FindMount" = 0 ] || fail "the dead mount is still there"
mkdir full && touch full/file
expect_fail "not empty" $LM mount repo full --cache-dir "$WORK/cache3" --state-dir "$WORK/st3"
mount_repo repo full --nonempty
"$LM" umount full >/dev/null

note "bad options: one line naming the option"
expect_fail "unknown command 'lsit'" $LM lsit
expect_fail "--threads" $LM backup repo vms/raw --vm raw --threads 100000
expect_fail "--threads" $LM prestage repo flat --threads 100000 --cache-dir "$WORK/cache4"
expect_fail "--pin-for" $LM prestage repo flat --pin-for 1y --cache-dir "$WORK/cache4"
expect_fail "--chunk-size 1T" $LM init repo2 --chunk-size 1T
expect_fail "no repository path" $LM init ''
expect_fail "--cache-size" $LM mount repo mnt --cache-size 0 --cache-dir "$WORK/cache4" --state-dir "$WORK/st4"
touch afile
expect_fail "not a directory" $LM mount repo mnt --cache-dir "$WORK/cache4" --state-dir "$WORK/afile"

note "profiles: checked at attach time, bad ones named by entry and field, fallback at prestage"
printf '{"format":"livemount-profile","version":1,"entries":[{"file":"vm.vmx","ranges":[[-1,5]]}]}' >neg.json
expect_fail "entry 0: field 'ranges'" $LM profile show neg.json
printf '{"format":"livemount-profile","version":1,"entries":[{"file":"vm.vmx","ranges":[[18446744073709551615,5]]}]}' >big.json
expect_fail "entry 0: field 'ranges'" $LM profile show big.json
printf '{"format":"livemount-profile","version":1,"entries":[{"file":"../vm.vmx","ranges":[[0,5]]}]}' >esc.json
expect_fail "entry 0: field 'file'" $LM profile show esc.json
expect_fail "--profile" $LM backup repo vms/vmdk-flat --vm flat --profile neg.json
$LM profile export repo flat good.json --state-dir "$WORK/st5" >/dev/null
$LM profile show good.json --json >shown.json || fail "profile show --json"
$LM backup repo vms/vmdk-flat --vm flat --profile good.json >/dev/null
fid=$($LM list repo flat --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["vms"][0]["backups"][-1]["id"])')
cp neg.json "repo/backups/flat/$fid/profile.json"  # damaged after the fact (a hostile repository)
$LM prestage repo flat --cache-dir "$WORK/cache5" --state-dir "$WORK/st5" --json >p.json 2>p.err ||
  { cat p.err; fail "prestage failed instead of falling back"; }
grep -q "warning: ignoring the profile attached" p.err || { cat p.err; fail "no warning for the bad attached profile"; }
[ "$(json_get p.json 'j["profile"]')" = structural ] || fail "did not fall back to the structural profile"

note "list prints times with their zone"
$LM list repo --json >l.json
json_get l.json 'j["vms"][0]["backups"][0]["time"]' | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' || fail "JSON time is not UTC ISO 8601"
$LM list repo | sed -n 2p | grep -qE ' [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}(Z|[+-][0-9]{2}:[0-9]{2}) ' || fail "list TIME has no zone"

note "restore --continue-on-error restores what it can and names the rest"
mkdir two && head -c $((1 << 20)) /dev/urandom >two/a.raw && head -c $((1 << 20)) /dev/urandom >two/b.raw
$LM init repo6 --encryption none >/dev/null && $LM backup repo6 two --vm two >/dev/null
pack=$(ls repo6/packs/*/*.pack | head -1)
python3 - "$pack" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(100); b = f.read(1); f.seek(100); f.write(bytes([b[0] ^ 0xFF]))
PY
rc=0; $LM restore repo6 two out6 --continue-on-error --json >r.json 2>r.err || rc=$?
[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "restore with a damaged chunk exit $rc"
[ "$(json_get r.json 'len(j["failed"])')" = 1 ] || fail "expected exactly one failed file"
[ "$(json_get r.json 'j["files"]')" = 1 ] || fail "the undamaged file was not restored"
cmp out6/b.raw two/b.raw 2>/dev/null || cmp out6/a.raw two/a.raw || fail "restored file differs"
[ "$(ls out6 | wc -l)" = 1 ] || fail "the damaged file was left behind (partial)"

note "backup --exclude, and entries it cannot read are skipped with a warning (exit 3)"
mkdir -p ex/keep ex/skipme && echo a >ex/keep/a.cfg && echo b >ex/skipme/b.cfg && echo c >ex/x.lck
$LM backup repo ex --vm ex --exclude skipme --exclude '*.lck' --json >e.json
[ "$(json_get e.json 'sorted(j["excluded"])')" = "['skipme', 'x.lck']" ] || fail "exclude: $(cat e.json)"
# Another user must reach the binary: the build tree may sit in a private directory.
chmod 755 "$WORK" && install -m 755 "$LM" "$WORK/livemount-for-nobody"
LMN=$WORK/livemount-for-nobody
mkdir -p nb && chown nobody nb && cd nb
runuser -u nobody -- "$LMN" init r --encryption none >/dev/null
runuser -u nobody -- mkdir v && runuser -u nobody -- sh -c 'echo ok >v/ok.cfg; echo no >v/secret; chmod 000 v/secret'
rc=0; runuser -u nobody -- "$LMN" backup r v --vm v >o.out 2>o.err || rc=$?
cd "$WORK"
[ $rc -eq 3 ] || { cat nb/o.err; fail "backup with an unreadable file exit $rc, expected 3"; }
grep -q "warning: .*secret" nb/o.err || fail "the unreadable file was not named"

echo "PASS"
