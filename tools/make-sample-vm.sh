#!/usr/bin/env bash
# Makes a small bootable Linux VM from Debian's packages (nothing fetched at run time):
# an MBR disk with syslinux, a FAT boot partition (Debian's cloud kernel and an initramfs
# built here around busybox) and an ext4 data partition. The guest's init checks its data
# against SHA256SUMS, appends a line to /data/boot-log.txt, and powers off; everything it
# says on the serial console starts with "LIVEMOUNT-GUEST:".
#
#   tools/make-sample-vm.sh OUTDIR [--flavour kvm|vmware] [--name NAME]
#     kvm:    OUTDIR/NAME.qcow2 and OUTDIR/NAME.xml (libvirt domain)
#     vmware: OUTDIR/NAME.vmx, NAME.vmdk + NAME-flat.vmdk (monolithicFlat), NAME.nvram
#   Boot it: tools/boot-sample-vm.sh DISK [qemu options...]
#
# --distro debian makes the real guest instead (tools/sample-vm/debian.sh): Debian 12 with
# systemd, an application of --app-mib MiB (256) read at start, and a data disk of
# --data-size (16G) of random data, its contents repeatable from --seed.
#   Boot it: tools/boot-sample-vm.sh SYSTEM-DISK DATA-DISK [qemu options...]
set -euo pipefail
USAGE="usage: make-sample-vm.sh OUTDIR [--flavour kvm|vmware] [--name NAME] [--distro busybox|debian] [--app-mib N] [--data-size SIZE] [--seed S]"
OUT=${1:?$USAGE}
shift
FLAVOUR=kvm
NAME=sample
DISTRO=busybox
APP_MIB=256
DATA_SIZE=16G
SEED=livemount
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "make-sample-vm: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --flavour) FLAVOUR=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --distro) DISTRO=$2; shift 2 ;;
    --app-mib) APP_MIB=$2; shift 2 ;;
    --data-size) DATA_SIZE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    *) echo "make-sample-vm: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$FLAVOUR" in kvm|vmware) ;; *) echo "make-sample-vm: flavour must be kvm or vmware" >&2; exit 2 ;; esac
case "$NAME" in ''|*[!A-Za-z0-9_.-]*|.*) echo "make-sample-vm: bad --name '$NAME'" >&2; exit 2 ;; esac
case "$APP_MIB" in ''|*[!0-9]*) echo "make-sample-vm: --app-mib must be a number of MiB" >&2; exit 2 ;; esac
case "$DISTRO" in
  busybox) ;;
  debian) exec "$(dirname "$0")/sample-vm/debian.sh" "$OUT" "$FLAVOUR" "$NAME" "$APP_MIB" "$DATA_SIZE" "$SEED" ;;
  *) echo "make-sample-vm: --distro must be busybox or debian" >&2; exit 2 ;;
esac

KVER=$(ls /lib/modules | grep cloud-amd64 | sort -V | tail -1 || true)
[ -n "$KVER" ] && [ -f "/boot/vmlinuz-$KVER" ] || {
  echo "make-sample-vm: needs linux-image-cloud-amd64 (tools/install-deps.sh guest)" >&2; exit 1; }
BUSYBOX=/bin/busybox
# grep reads the whole list (no -q): an early exit would kill busybox with SIGPIPE, and
# pipefail would take that for a missing busybox (seen twice under load).
[ -x "$BUSYBOX" ] && "$BUSYBOX" --list | grep -x sha256sum >/dev/null || {
  echo "make-sample-vm: needs busybox-static" >&2; exit 1; }

mkdir -p "$OUT"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# --- initramfs: busybox, the virtio and VMware PVSCSI modules, and /init ---------------------
# Both disk controllers, so each flavour boots on its own hypervisor's and on the other's
# (livemount run --hypervisor libvirt keeps a VMware copy on its PVSCSI controller).
R=$T/initramfs
mkdir -p "$R"/{bin,dev,proc,sys,data,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
M=/lib/modules/$KVER/kernel/drivers
for mod in virtio/virtio_ring virtio/virtio virtio/virtio_pci_legacy_dev \
           virtio/virtio_pci_modern_dev virtio/virtio_pci block/virtio_blk \
           scsi/scsi_common scsi/scsi_mod scsi/sd_mod scsi/vmw_pvscsi; do
  cp "$M/$mod.ko" "$R/lib/modules/"
done
cat >"$R/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "LIVEMOUNT-GUEST: $*"; }
say "booted kernel $(uname -r)"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk \
         scsi_common scsi_mod sd_mod vmw_pvscsi; do
  insmod /lib/modules/$m.ko || say "insmod $m failed"
done
part=
for i in $(seq 100); do
  for p in /dev/vda2 /dev/sda2; do [ -b $p ] && part=$p; done
  [ -n "$part" ] && break
  sleep 0.1
done
if ! mount -t ext4 "$part" /data; then say "cannot mount the data partition"; ls /dev; cat /proc/partitions; poweroff -f; fi
cd /data
if sha256sum -c -s SHA256SUMS; then say "data ok ($(wc -l < SHA256SUMS) files verified)"
else say "data BAD"; fi
n=$(( $(cat boot-log.txt 2>/dev/null | wc -l) + 1 ))
echo "boot $n" >> boot-log.txt
sync
say "wrote /data/boot-log.txt (boot $n)"
cd /
umount /data
say "powering off"
poweroff -f
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) >"$T/initrd.gz"

# --- the data partition: files the guest verifies ------------------------------------------
D=$T/data
mkdir -p "$D/app"
head -c $((6 << 20)) /dev/urandom >"$D/app/database.bin"
for i in $(seq 1 200); do echo "config line $i of the sample application" ; done >"$D/app/app.conf"
seq 1 200000 >"$D/app/numbers.txt"
(cd "$D" && find app -type f | sort | xargs sha256sum >SHA256SUMS)

# --- the disk: MBR + syslinux, FAT boot partition, ext4 data partition ---------------------
source "$(dirname "$0")/sample-vm/lib.sh"
mkfs.ext4 -q -F -L data -d "$D" "$T/data.img" 24M >/dev/null
DISK=$T/disk.raw
make_boot_disk "$DISK" "$T" 40 "/boot/vmlinuz-$KVER" "$T/initrd.gz" initrd.gz \
  "console=ttyS0 quiet panic=-1 rdinit=/init" "$T/data.img"

if [ "$FLAVOUR" = kvm ]; then
  qemu-img convert -q -f raw -O qcow2 "$DISK" "$OUT/$NAME.qcow2"
  write_libvirt_xml "$OUT" "$NAME" 256 "$NAME.qcow2"
else
  qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$DISK" "$OUT/$NAME.vmdk"
  write_vmx "$OUT" "$NAME" 256 other5xlinux-64 "$NAME.vmdk"
fi
echo "made $FLAVOUR VM '$NAME' in $OUT"
