#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine: installs what is missing, builds,
# makes a sample VM, backs it up, verifies the repository and restores the VM.
#   tools/demo.sh            (work directory: $LIVEMOUNT_DEMO_DIR or /tmp/livemount-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
tools/install-deps.sh build demo
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target livemount >/dev/null
LM=$SRC/build/tools/livemount
DEMO=${LIVEMOUNT_DEMO_DIR:-/tmp/livemount-demo}
rm -rf "$DEMO" && mkdir -p "$DEMO" && cd "$DEMO"

step() {  # step NAME COMMAND...: runs a command and says how long it took
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  "$@"
  printf '   [%s: %.2f s]\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)"
}

echo "== making a sample VM in $DEMO/vm (qcow2 disk and libvirt XML)"
mkdir vm
step "make sample VM" bash -c '
  head -c 64M /dev/urandom >vm/raw.img
  yes "sample VM guest data: logs, binaries, databases" | head -c 64M >>vm/raw.img
  truncate -s 256M vm/raw.img
  qemu-img convert -q -f raw -O qcow2 vm/raw.img vm/sample.qcow2 && rm vm/raw.img
  cat >vm/sample.xml <<XML
<domain type="kvm"><name>sample</name><memory unit="MiB">256</memory>
  <devices><disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
  <source file="sample.qcow2"/><target dev="vda" bus="virtio"/></disk></devices></domain>
XML'
echo "== livemount init"
step init "$LM" init repo
echo "== livemount backup (first: everything is new)"
step backup "$LM" backup repo vm --vm sample
echo "== livemount backup (again: dedup stores nothing new)"
step "backup again" "$LM" backup repo vm --vm sample
echo "== livemount list"
"$LM" list repo
echo "== livemount verify --read-data"
step verify "$LM" verify repo --read-data
echo "== livemount restore"
step restore "$LM" restore repo sample@latest restored
cmp vm/sample.qcow2 restored/sample.qcow2 && cmp vm/sample.xml restored/sample.xml
qemu-img info restored/sample.qcow2 | head -3
echo "== done: the restored VM is byte-identical to the original"
