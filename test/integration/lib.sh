# Shared helpers for the integration tests. Source it after setting LM (the binary).
set -euo pipefail

LM=$(readlink -f "${LM:?set LM to the livemount binary}")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lm-it-XXXXXX")
# Commands keep a repository's chunk index in the cache directory: the test's own.
export LIVEMOUNT_CACHE_DIR=$WORK/data-agent-cache
cleanup_hooks=()
on_exit() {
  local rc=$? i
  # Last in, first out: a VM goes before the hypervisor that runs it, which goes before the mount.
  for ((i = ${#cleanup_hooks[@]} - 1; i >= 0; i--)); do eval "${cleanup_hooks[i]}" || true; done
  rm -rf "$WORK"
  if [ $rc -ne 0 ]; then echo "FAILED (exit $rc)" >&2; fi
  exit $rc
}
trap on_exit EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "== $*"; }

# Runs a command that must fail: non-zero exit, no crash (exit < 128), exactly one line on
# stderr that contains the given text.
expect_fail() {
  local want=$1; shift
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ $rc -ne 0 ] || fail "expected failure: $*"
  [ $rc -lt 128 ] || fail "crashed with exit $rc: $*"
  local lines; lines=$(wc -l <"$WORK/err")
  [ "$lines" -eq 1 ] || { cat "$WORK/err" >&2; fail "expected one stderr line, got $lines: $*"; }
  grep -q -- "$want" "$WORK/err" || { cat "$WORK/err" >&2; fail "stderr lacks '$want': $*"; }
}

# json_get FILE EXPR: evaluates a Python expression on the parsed JSON `j`.
json_get() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# Makes a raw disk image: random, text and zero regions (the zero one a hole).
make_raw_disk() {
  local path=$1 mib=$2 third=$(( $2 / 3 ))
  head -c $((third << 20)) /dev/urandom >"$path"
  python3 - "$path" $((third << 20)) <<'PY'
import random, sys
random.seed(7)
words = "backup virtual machine disk block chunk restore mount cache guest kernel boot".split()
out = []
n = 0
while n < int(sys.argv[2]):
    line = " ".join(random.choice(words) for _ in range(12)) + " %d\n" % random.randrange(10**6)
    out.append(line); n += len(line)
with open(sys.argv[1], "ab") as f:
    f.write("".join(out).encode()[: int(sys.argv[2])])
PY
  truncate -s $((mib << 20)) "$path"
}

# Makes VM directories of each flavour under $1: raw, qcow2, vmdk-sparse, vmdk-flat.
make_vm_dirs() {
  local base=$1 mib=${2:-24}
  mkdir -p "$base"/{raw,qcow2,vmdk-sparse,vmdk-flat/logs}
  make_raw_disk "$base/raw/disk.raw" "$mib"
  cat >"$base/raw/vm.xml" <<XML
<domain type='kvm'><name>raw</name><memory unit='MiB'>256</memory>
<devices><disk type='file' device='disk'><source file='disk.raw'/></disk></devices></domain>
XML
  qemu-img convert -q -f raw -O qcow2 "$base/raw/disk.raw" "$base/qcow2/disk.qcow2"
  cp "$base/raw/vm.xml" "$base/qcow2/vm.xml"
  qemu-img convert -q -f raw -O vmdk -o subformat=monolithicSparse "$base/raw/disk.raw" \
    "$base/vmdk-sparse/disk.vmdk"
  qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$base/raw/disk.raw" \
    "$base/vmdk-flat/disk.vmdk"
  printf 'config.version = "8"\nvirtualHW.version = "14"\nscsi0:0.fileName = "disk.vmdk"\n' \
    >"$base/vmdk-flat/vm.vmx"
  head -c 8684 /dev/urandom >"$base/vmdk-flat/vm.nvram"
  echo "log line" >"$base/vmdk-flat/logs/vmware.log"
  ln -s vm.vmx "$base/vmdk-flat/current.vmx"
  chmod 600 "$base/vmdk-flat/vm.nvram"
}

# Compares two trees: same names, types, bytes, modes, mtimes and symlink targets.
same_tree() {
  local a=$1 b=$2
  (cd "$a" && find . -printf '%p %y %m %T@ %l\n' | sort) >"$WORK/tree-a"
  (cd "$b" && find . -printf '%p %y %m %T@ %l\n' | sort) >"$WORK/tree-b"
  # The top directory itself may differ (it was created by the test).
  grep -av '^\. ' "$WORK/tree-a" >"$WORK/tree-a2" || true
  grep -av '^\. ' "$WORK/tree-b" >"$WORK/tree-b2" || true
  diff "$WORK/tree-a2" "$WORK/tree-b2" >&2 || fail "trees differ in metadata: $a $b"
  (cd "$a" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/sum-a"
  (cd "$b" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/sum-b"
  diff "$WORK/sum-a" "$WORK/sum-b" >&2 || fail "trees differ in content: $a $b"
}

# --- live mounts -------------------------------------------------------------------------
# mount_repo REPO MNT [extra mount options...]: mounts in the background with cache and
# state under $WORK; the exit trap unmounts it and stops the daemon whatever happens.
mount_repo() {
  local repo=$1 mnt=$2; shift 2
  mkdir -p "$mnt"
  "$LM" mount "$repo" "$mnt" --cache-dir "${CACHE_DIR:-$WORK/cache}" \
    --state-dir "${STATE_DIR:-$WORK/state}" "$@" >/dev/null
  cleanup_hooks+=("force_unmount '$mnt'")
}

force_unmount() {
  local mnt=$1 pid
  pid=$(getfattr --only-values -n user.livemount.pid "$mnt" 2>/dev/null || true)
  [ -z "$pid" ] || timeout 20 "$LM" export --stop "$mnt" >/dev/null 2>&1 || true
  fusermount3 -u -z "$mnt" 2>/dev/null || true
  if [ -n "$pid" ]; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

stat_of() {  # stat_of MNT EXPR: one figure from `livemount stats --json`
  "$LM" stats "$1" --json >"$WORK/stats.json"
  json_get "$WORK/stats.json" "$2"
}

# Fails if the daemon logged errors or warnings other than the expected pattern.
check_log() {
  local log=${STATE_DIR:-$WORK/state}/livemount.log allowed=${1:-}
  [ -f "$log" ] || return 0
  local bad
  bad=$(grep -E ' (error|warn) ' "$log" | { if [ -n "$allowed" ]; then grep -vE "$allowed"; else cat; fi; } || true)
  [ -z "$bad" ] || { echo "$bad" >&2; fail "the daemon logged errors"; }
}

# --- NFS export --------------------------------------------------------------------------
# The media agent starts rpcbind when nothing answers on port 111; a test that exports
# stops it again at exit if it was not running before, so no daemon is left behind.
nfs_setup() {
  command -v ganesha.nfsd >/dev/null || fail "nfs-ganesha is not installed (tools/install-deps.sh test)"
  if ! (exec 3<>/dev/tcp/127.0.0.1/111) 2>/dev/null; then cleanup_hooks+=("pkill -x rpcbind"); fi
  cleanup_hooks+=("pkill -f -- '-f $WORK/.*/ganesha.conf' || true")
}

# qemu-io (QEMU's own block layer and NFS client) on a file, kept open across commands:
# qio_open URL; qio "read -P 0x05 4M 1M"; qio_close prints everything it said.
qio_open() {
  rm -f "$WORK/qio.fifo"; mkfifo "$WORK/qio.fifo"
  qemu-io -f raw "$1" <"$WORK/qio.fifo" >"$WORK/qio.out" 2>&1 &
  QIO_PID=$!
  exec {QIO_FD}>"$WORK/qio.fifo"
  cleanup_hooks+=("kill $QIO_PID 2>/dev/null")
}
qio() { echo "$*" >&$QIO_FD; }
# qio_wait N: waits until qemu-io has answered N read/write commands in all.
qio_wait() {
  for _ in $(seq 300); do
    [ "$(grep -cE '^(qemu-io> )*(read|wrote) [0-9]+/' "$WORK/qio.out" || true)" -ge "$1" ] && return 0
    grep -qiE 'error|failed|stale' "$WORK/qio.out" && { cat "$WORK/qio.out" >&2; fail "qemu-io: an I/O failed"; }
    sleep 0.1
  done
  cat "$WORK/qio.out" >&2; fail "qemu-io did not answer"
}
qio_close() {
  echo quit >&$QIO_FD
  exec {QIO_FD}>&-
  wait "$QIO_PID" || true
  cat "$WORK/qio.out"
}

# --- object store ------------------------------------------------------------------------
# s3_setup: the RGW of the Ceph cluster the ctest fixture started (LM_CEPH_DIR), with its
# endpoint and credentials exported. s3_repo NAME: a location in a bucket of its own, so
# tests never see each other's objects; s3_bucket_of LOCATION: its bucket.
s3_setup() {
  [ -f "${LM_CEPH_DIR:-}/s3.env" ] || fail "no Ceph cluster (LM_CEPH_DIR=${LM_CEPH_DIR:-unset}; the ctest fixture s3/cluster_start makes one)"
  source "$LM_CEPH_DIR/s3.env"
  S3_RUN=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
}
s3_repo() { echo "s3:$LM_S3_ENDPOINT/lm-$1-$S3_RUN/repo"; }
s3_bucket_of() { echo "$1" | sed -E 's|^s3:https?://[^/]+/([^/]+).*|\1|'; }

# --- libvirt -----------------------------------------------------------------------------
# start_libvirt: virtlogd and libvirtd for this test, stopped by pid at exit; a daemon this
# machine already runs is used and left alone.
start_libvirt() {
  command -v libvirtd >/dev/null || fail "libvirt is not installed (tools/install-deps.sh test)"
  local name pid
  for name in virtlogd libvirtd; do
    pgrep -x "$name" >/dev/null && continue
    "$name" -d -p "$WORK/$name.pid" || fail "$name did not start"
    for _ in $(seq 50); do [ -s "$WORK/$name.pid" ] && break; sleep 0.1; done
    pid=$(cat "$WORK/$name.pid")
    cleanup_hooks+=("kill $pid 2>/dev/null; for _ in \$(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done; kill -9 $pid 2>/dev/null")
  done
  for _ in $(seq 100); do virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "libvirtd does not answer"
}

# wait_domain_off NAME [SECONDS]: until the libvirt domain is shut off (the guest powered off).
wait_domain_off() {
  local state=""
  for _ in $(seq $((${2:-300} * 10))); do
    state=$(virsh -q -c qemu:///system domstate "$1" 2>/dev/null || true)
    [ "$state" = "shut off" ] && return 0
    sleep 0.1
  done
  fail "domain $1 did not power off (state: $state)"
}
