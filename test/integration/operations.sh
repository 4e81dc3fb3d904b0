#!/usr/bin/env bash
# The media agent as a service: the configuration file (and what overrides it), the
# Prometheus endpoint (scraped, parsed by the Prometheus client library's own parser, and
# following what the mount does), readiness to systemd (sd_notify over NOTIFY_SOCKET),
# expiry policies (held back by open files, kept across a restart), the way back to
# production (restore --with-overlay, backup --from-mount), and what the install
# target puts on a host (units that systemd-analyze verifies, man page, bash completion).
LM=$1
BUILD_DIR=${2:-}
source "$(dirname "$0")/lib.sh"
cd "$WORK"

mkdir -p vms/web01
head -c $((8 << 20)) /dev/urandom >vms/web01/disk-flat.vmdk
printf 'displayName = "web01"\nmemSize = "512"\n' >vms/web01/vm.vmx
$LM init repo --encryption none >/dev/null 2>&1
$LM backup repo vms/web01 --vm web01 >/dev/null 2>&1
mkdir -p mnt

note "configuration file: the mount takes everything from it"
cat >lm.conf <<CONF
# a media agent for the test
repository = "$WORK/repo"
mountpoint = "$WORK/mnt"
state-dir = "$WORK/state"
cache-dir = "$WORK/cache"
cache-size = "64M"
metrics = "127.0.0.1:0"
expire-after = "1h"
CONF
$LM --config lm.conf mount >mount.out 2>&1 || { cat mount.out; fail "mount from the configuration"; }
cleanup_hooks+=("force_unmount '$WORK/mnt'")
grep -q "metrics at http://127.0.0.1:" mount.out || { cat mount.out; fail "the mount did not say where its metrics are"; }
URL=$(grep -o "http://127.0.0.1:[0-9]*/metrics" mount.out)
[ "$(stat_of mnt 'j["cache"]["capacity"]')" = $((64 << 20)) ] || fail "cache-size from the configuration not applied"
[ -f state/livemount.log ] || fail "state-dir from the configuration not used"
# The repository comes from it too (list with no REPO), and LIVEMOUNT_CONFIG names it.
LIVEMOUNT_CONFIG=$WORK/lm.conf $LM list >list.out 2>/dev/null || fail "list from LIVEMOUNT_CONFIG"
grep -q "^web01 " list.out || fail "list from the configuration shows no web01"
# The environment wins over the file, and a flag over both.
mkdir -p other && $LM init other --encryption none >/dev/null 2>&1
LIVEMOUNT_REPOSITORY=$WORK/other $LM --config lm.conf list >list2.out 2>/dev/null
grep -q "^web01 " list2.out && fail "LIVEMOUNT_REPOSITORY did not win over the configuration file"
$LM --config lm.conf list "$WORK/other" >list3.out 2>/dev/null
grep -q "^web01 " list3.out && fail "REPO on the command line did not win over the configuration file"
# A damaged configuration is one line naming the file and the key.
printf 'repository = "/x"\ncache-sise = "1G"\n' >bad.conf
expect_fail "bad.conf: unknown key 'cache-sise'" $LM --config bad.conf list
expect_fail "nonexistent.conf" $LM --config "$WORK/nonexistent.conf" list

note "metrics: scraped, parsed by the Prometheus client library, and following the mount"
# Debian's python3-prometheus-client, whatever python3 is first on PATH.
head -c 4096 mnt/web01/latest/disk-flat.vmdk >/dev/null
echo "# edited by the guest" >>mnt/web01/latest/vm.vmx
curl -fsS "$URL" >scrape1.txt || fail "scrape"
/usr/bin/python3 - scrape1.txt <<'PY' || fail "the exposition does not parse or lacks a metric"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def value(name, **labels):
    for f in fams.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise SystemExit(f"no sample {name} {labels}")
# The client library strips _total from counter family names.
for fam in ["livemount_cache_hits", "livemount_cache_misses", "livemount_cache_evictions",
            "livemount_repository_fetched_chunks", "livemount_repository_fetched_bytes",
            "livemount_repository_read_duration_seconds", "livemount_guest_read_duration_seconds",
            "livemount_prestage_remaining_bytes", "livemount_hydration_remaining_bytes",
            "livemount_overlay_bytes", "livemount_nfs_export_up"]:
    assert fam in fams, f"missing family {fam}"
assert fams["livemount_guest_read_duration_seconds"].type == "histogram"
assert fams["livemount_cache_hits"].type == "counter"
assert value("livemount_repository_fetched_chunks_total", kind="guest") > 0, "no guest fetch counted"
assert value("livemount_guest_read_duration_seconds_count") > 0, "no guest read timed"
assert value("livemount_guest_reads_total", vm="web01") > 0, "no read of web01 counted"
assert value("livemount_overlay_bytes", vm="web01") > 0, "web01's overlay not shown"
assert value("livemount_expiry_timestamp_seconds", vm="web01") > 0, "expire-after gave web01 no deadline"
assert value("livemount_nfs_export_up") == 0
PY
# A pre-staging shows up by its own kind.
$LM --config lm.conf prestage web01@latest --mount mnt --all >prestage.out 2>&1 || { cat prestage.out; fail "prestage"; }
curl -fsS "$URL" >scrape2.txt
/usr/bin/python3 - scrape1.txt scrape2.txt <<'PY' || fail "metrics did not follow the pre-staging"
import sys
from prometheus_client.parser import text_string_to_metric_families
def samples(path):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(open(path).read()) for s in f.samples}
a, b = samples(sys.argv[1]), samples(sys.argv[2])
staged = [k for k in b if k[0] == "livemount_repository_fetched_chunks_total" and ("kind", "prestage") in k[1]
          or k[0] == "livemount_repository_fetched_chunks_total" and ("kind", "hydrate") in k[1]]
assert sum(b[k] for k in staged) > sum(a.get(k, 0) for k in staged), "pre-staging fetched nothing by its kind"
assert b[("livemount_prestage_chunks_total", ())] > a[("livemount_prestage_chunks_total", ())], "no chunk pre-staged"
PY
code=$(curl -s -o /dev/null -w '%{http_code}' "${URL%/metrics}/")
[ "$code" = 404 ] || fail "GET / answered $code, not 404"

note "expiry: an open file holds it back; closing it lets it go; a new policy survives a restart"
[ "$(stat_of mnt 'len(j["overlays"])')" = 1 ] || fail "expected web01's overlay"
VMX=vm.vmx
exec 7<"mnt/web01/latest/$VMX"
$LM expire mnt web01@latest 1s >/dev/null
sleep 2.5
[ "$(stat_of mnt 'len(j["overlays"])')" = 1 ] || fail "the overlay was discarded while a file was open"
exec 7<&-
for _ in $(seq 50); do [ "$(stat_of mnt 'len(j["overlays"])')" = 0 ] && break; sleep 0.2; done
[ "$(stat_of mnt 'len(j["overlays"])')" = 0 ] || fail "the overlay was not discarded once its files were closed"
cmp -s "mnt/web01/latest/$VMX" "vms/web01/$VMX" || fail "the expired copy does not show the backup again"
grep -q "expired web01@" state/livemount.log || fail "the expiry is not in the log"
$LM expire mnt web01@latest 3h >/dev/null
$LM --config lm.conf umount >/dev/null || fail "umount from the configuration"
$LM --config lm.conf mount >/dev/null 2>&1 || fail "mount again"
$LM expire mnt >expire.out
grep -q "^web01@.* expires " expire.out || { cat expire.out; fail "the policy did not survive the restart"; }
$LM expire mnt web01@latest never >/dev/null
$LM expire mnt >expire.out
grep -q "no backup copy" expire.out || fail "never did not remove the policy"
expect_fail "expected a duration" $LM expire mnt web01@latest soon
$LM --config lm.conf umount >/dev/null
# A damaged policy file stops the agent with its name, and loses nothing.
echo '{"version": 1, "copies": {"../x@1": {"vm": "../x", "id": "1", "deadline": 1}}}' >state/expiry.json
expect_fail "expiry.json" $LM --config lm.conf mount
rm state/expiry.json

note "back to production: restore --with-overlay and backup --from-mount match what the mount shows"
$LM --config lm.conf mount >/dev/null 2>&1 || fail "mount for the way back"
COPY=mnt/web01/$(readlink mnt/web01/latest)
printf 'PATCHED' | dd of=$COPY/disk-flat.vmdk bs=1 seek=300000 conv=notrunc status=none
truncate -s $((9 << 20)) $COPY/disk-flat.vmdk
echo "a new file" >$COPY/notes.txt
mkdir $COPY/snapshots && echo "snap" >$COPY/snapshots/s1.vmsn
chmod 640 $COPY/vm.vmx
$LM --config lm.conf restore web01@latest prod --with-overlay --json >prod.json 2>prod.err || { cat prod.err; false; } || fail "restore --with-overlay"
diff -r --no-dereference prod "$COPY" >/dev/null || { diff -r prod "$COPY"; fail "restore --with-overlay differs from the mount"; }
[ "$(stat -c %a prod/vm.vmx)" = 640 ] || fail "restore --with-overlay lost a mode change"
[ "$(json_get prod.json 'j["overlay"]["temporary_agent"]')" = False ] || fail "restore did not use the running agent"
$LM --config lm.conf backup --from-mount mnt web01@latest --vm web01-live --json >live.json || fail "backup --from-mount"
[ "$(json_get live.json 'j["from_mount"]["chunks_reused"]')" -ge 60 ] || { cat live.json; fail "unchanged chunks were read"; }
[ "$(json_get live.json 'j["from_mount"]["chunks_read"]')" -le 16 ] || { cat live.json; fail "too many chunks read"; }
$LM --config lm.conf restore web01-live live >/dev/null 2>&1
diff -r --no-dereference live "$COPY" >/dev/null || fail "the new backup copy differs from the mount"
# A copy that changes while it is read is never committed as one point in time.
( while :; do printf 'x' | dd of=$COPY/disk-flat.vmdk bs=1 seek=4096 conv=notrunc status=none 2>/dev/null; sleep 0.01; done ) &
WRITER=$!
cleanup_hooks+=("kill $WRITER 2>/dev/null")
expect_fail "changed while it was being backed up" $LM --config lm.conf backup --from-mount mnt web01@latest --vm web01-busy
kill $WRITER; wait $WRITER 2>/dev/null || true
LIVEMOUNT_CONFIG=$WORK/lm.conf $LM list web01-busy >busy.out 2>&1 && grep -q "web01-busy " busy.out && fail "a changing copy was committed"
# With no agent running, restore starts one of its own for the state directory.
$LM --config lm.conf umount >/dev/null
$LM --config lm.conf restore web01@latest prod2 --with-overlay >prod2.out || fail "restore --with-overlay without an agent"
grep -q "started for this" prod2.out || fail "restore did not say it started an agent"
$LM --config lm.conf mount >/dev/null 2>&1
diff -r --no-dereference prod2 "mnt/web01/$(readlink mnt/web01/latest)" >/dev/null || fail "restore through its own agent differs"
$LM --config lm.conf umount >/dev/null
grep -q " /tmp/livemount-restore-" /proc/mounts && fail "restore left its own agent's mount behind"

note "readiness to systemd: READY=1 once the mount serves, STOPPING=1 when it ends"
python3 - "$WORK/notify.sock" "$WORK/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "w") as out:
    try:
        while True:
            msg = s.recv(4096).decode()
            out.write(msg.replace("\n", " ") + "\n")
            out.flush()
            if "STOPPING=1" in msg:
                break
    except socket.timeout:
        pass
PY
LISTENER=$!
cleanup_hooks+=("kill $LISTENER 2>/dev/null")
for _ in $(seq 50); do [ -S notify.sock ] && break; sleep 0.1; done
NOTIFY_SOCKET=$WORK/notify.sock $LM --config lm.conf mount --foreground 2>fg.log &
AGENT=$!
cleanup_hooks+=("kill $AGENT 2>/dev/null")
for _ in $(seq 100); do grep -q READY=1 notify.log 2>/dev/null && break; sleep 0.1; done
grep -q "READY=1" notify.log || { cat fg.log; fail "no READY=1"; }
grep -q "MAINPID=$AGENT" notify.log || fail "READY=1 did not name the agent's pid"
ls mnt/web01/latest | grep -q vmx || fail "READY=1 came before the mount served"
$LM --config lm.conf umount >/dev/null
wait $AGENT || fail "the foreground agent exited with an error"
wait $LISTENER || true
grep -q "STOPPING=1" notify.log || fail "no STOPPING=1"

note "install: units that systemd-analyze verifies, man page, bash completion"
if [ -n "$BUILD_DIR" ]; then
  DESTDIR=$WORK/root cmake --install "$BUILD_DIR" --prefix /usr/local >install.log 2>&1 || { cat install.log; fail "install"; }
  ROOT=$WORK/root
  for f in usr/local/bin/livemount usr/local/share/man/man1/livemount.1 \
           usr/local/share/bash-completion/completions/livemount \
           usr/local/lib/systemd/system/livemount-agent@.service usr/local/lib/systemd/system/livemount-backup@.service \
           usr/local/lib/systemd/system/livemount-backup@.timer usr/local/share/doc/livemount/livemount.conf.example; do
    [ -e "$ROOT/$f" ] || fail "install did not put $f"
  done
  grep -q "^ExecStart=/usr/local/bin/livemount " "$ROOT/usr/local/lib/systemd/system/livemount-agent@.service" \
    || fail "the agent unit does not name the installed binary"
  # Verified as instances, with the binary where the units expect it (the installed tree).
  UNITS=$WORK/units && mkdir -p "$UNITS"
  for u in livemount-agent@.service livemount-backup@.service livemount-backup@.timer; do
    sed "s|/usr/local/bin/livemount|$ROOT/usr/local/bin/livemount|g" "$ROOT/usr/local/lib/systemd/system/$u" \
      >"$UNITS/${u/@/@demo}"
  done
  SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$UNITS"/*.service "$UNITS"/*.timer >verify.log 2>&1 \
    || { cat verify.log; fail "systemd-analyze verify"; }
  grep -vE "^$" verify.log | grep -vi "Failed to .*ConditionPathExists\|Unit .* not found" && { cat verify.log; fail "systemd-analyze warned"; } || true
  # A unit with a mistake is caught by the same check.
  sed 's/^Type=notify/Type=notifyy/' "$UNITS/livemount-agent@demo.service" >"$UNITS/broken@demo.service"
  if SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$UNITS/broken@demo.service" >broken.log 2>&1 \
     && ! grep -q "notifyy" broken.log; then
    fail "systemd-analyze verify did not catch a broken unit"
  fi
  MANWIDTH=100 man -l "$ROOT/usr/local/share/man/man1/livemount.1" 2>/dev/null >man.txt || true
  grep -q "expire" man.txt || fail "the man page lacks the expire command"
  grep -q "livemount.conf" man.txt || fail "the man page lacks the configuration file"
  grep -q "livemount restore REPO VM@BACKUP DESTDIR" man.txt || fail "the man page lacks restore's synopsis"
  warnings=$(groff -ww -z -man "$ROOT/usr/local/share/man/man1/livemount.1" 2>&1 || true)
  [ -z "$warnings" ] || { echo "$warnings"; fail "groff warns about the man page"; }
fi
$LM completion bash >completion.bash
bash -c '
  source ./completion.bash
  complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _livemount; echo "${COMPREPLY[*]}"; }
  [[ " $(complete_words livemount ex) " == *" expire "* ]] || { echo "no expire"; exit 1; }
  [[ " $(complete_words livemount ex) " == *" export "* ]] || { echo "no export"; exit 1; }
  [[ " $(complete_words livemount mount --met) " == *" --metrics "* ]] || { echo "no --metrics"; exit 1; }
  [[ " $(complete_words livemount profile s) " == *" show "* ]] || { echo "no profile show"; exit 1; }
  [[ " $(complete_words livemount list --con) " == *" --config "* ]] || { echo "no --config after a command"; exit 1; }
  [[ -z "$(complete_words livemount mount --zzz)" ]] || { echo "completed an unknown flag"; exit 1; }
' || fail "bash completion"
expect_fail "only bash" $LM completion zsh

check_log "cannot record the expiry|expired"
echo "PASS"
