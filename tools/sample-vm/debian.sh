#!/usr/bin/env bash
# The real sample guest (make-sample-vm.sh --distro debian): Debian 12 from Debian's archive
# (mmdebstrap: systemd, udev, journald, Debian's cloud kernel), booted by syslinux from a
# FAT partition with the guest's own kernel and initramfs, root on ext4 (LABEL=lm-root).
# A systemd service (livemount-app) runs once multi-user.target is reached: it reads and
# checks its application directory (/opt/app, APP_MIB of files), checks samples of the data
# disk (LABEL=lm-data on /data, one large random file), appends "boot N" to a log on each
# disk, reports on the serial console and powers the guest off. Console lines start with
# "LIVEMOUNT-GUEST:", like the busybox guest's, so tools/boot-sample-vm.sh boots both.
#
#   debian.sh OUTDIR FLAVOUR NAME APP_MIB DATA_SIZE SEED
#     kvm:    NAME.qcow2 (system), NAME-data.qcow2 (data), NAME.xml
#     vmware: NAME.vmdk/NAME-flat.vmdk, NAME_1.vmdk/NAME_1-flat.vmdk, NAME.vmx, NAME.nvram
# SEED makes the random data repeatable: VMs made with one seed share their data blocks
# (clones of one template). LIVEMOUNT_DEBIAN_ROOTFS=DIR keeps the mmdebstrap tree in DIR
# and reuses it (about two minutes saved per VM).
set -euo pipefail
OUT=$1 FLAVOUR=$2 NAME=$3 APP_MIB=$4 DATA_SIZE=$5 SEED=$6
command -v mmdebstrap >/dev/null || { echo "make-sample-vm: needs mmdebstrap (tools/install-deps.sh guest)" >&2; exit 1; }
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || { echo "make-sample-vm: needs syslinux" >&2; exit 1; }
DATA_BYTES=$(numfmt --from=iec "$DATA_SIZE" 2>/dev/null) || { echo "make-sample-vm: bad --data-size '$DATA_SIZE'" >&2; exit 2; }
[ "$DATA_BYTES" -ge $((64 << 20)) ] || { echo "make-sample-vm: --data-size must be at least 64M" >&2; exit 2; }
[ "$APP_MIB" -ge 8 ] || { echo "make-sample-vm: --app-mib must be at least 8" >&2; exit 2; }
mkdir -p "$OUT"
T=$(mktemp -d "${TMPDIR:-/var/tmp}/lm-debian.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'echo "make-sample-vm: failed at line $LINENO of $0" >&2' ERR

# A repeatable random stream: AES-CTR of zeros under a key derived from the seed.
random_bytes() {  # random_bytes SEED BYTES
  # openssl ends on SIGPIPE when head has enough: that is success here.
  (openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$1" </dev/zero 2>/dev/null || true) | head -c "$2"
}

# --- the root tree ------------------------------------------------------------------------
TREE=${LIVEMOUNT_DEBIAN_ROOTFS:-$T/tree}
if [ ! -f "$TREE/.livemount-complete" ]; then
  rm -rf "$TREE"
  mkdir -p "$(dirname "$TREE")"
  echo "make-sample-vm: mmdebstrap bookworm (a few minutes)" >&2
  mmdebstrap --quiet --variant=minbase --include=systemd-sysv,udev,linux-image-cloud-amd64,procps \
    bookworm "$TREE" >&2
  touch "$TREE/.livemount-complete"
fi
R=$T/root
cp -a "$TREE" "$R"
rm -f "$R/.livemount-complete"
KVER=$(ls "$R/lib/modules" | sort -V | tail -1)
echo "$NAME" >"$R/etc/hostname"
printf '%s\n' "$(echo "$NAME-$SEED" | sha256sum | head -c 32)" >"$R/etc/machine-id"
cat >"$R/etc/fstab" <<'FSTAB'
LABEL=lm-root  /      ext4  rw,errors=remount-ro                      0 0
LABEL=lm-data  /data  ext4  rw,nofail,x-systemd.device-timeout=60s  0 0
FSTAB
mkdir -p "$R/data" "$R/var/lib/livemount-app" "$R/var/log/journal"

# The application: files read at start, checked against CHECKSUMS (POSIX cksum: a CRC,
# which a guest under TCG computes ten times faster than SHA-256, and enough to see a
# wrong or zeroed block).
A=$R/opt/app
mkdir -p "$A/lib" "$A/share"
for i in $(seq 1 $(( (APP_MIB + 7) / 8 ))); do
  if [ $((i % 4)) -eq 0 ]; then  # a quarter text-like, the rest random (code, assets)
    seq "$((i * 1000000))" "$((i * 1000000 + 1100000))" >"$T/table"
    head -c $((8 << 20)) "$T/table" >"$A/share/table-$i.txt"
  else
    random_bytes "$SEED-app-$i" $((8 << 20)) >"$A/lib/module-$i.bin"
  fi
done
(cd "$A" && find lib share -type f | sort | xargs cksum >CHECKSUMS)

# The data disk's contents: one large random file, with samples the application checks.
OVERHEAD=$(( DATA_BYTES / 64 > (32 << 20) ? DATA_BYTES / 64 : 32 << 20 ))  # journal, bitmaps
DATA_FILE_BYTES=$(( (DATA_BYTES - OVERHEAD) / 1048576 * 1048576 ))
D=$T/data
mkdir -p "$D"
random_bytes "$SEED-data" "$DATA_FILE_BYTES" >"$D/volume.bin"
python3 - "$D/volume.bin" "$DATA_FILE_BYTES" >"$A/data-samples" <<'PY'
import hashlib, sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    for i in range(32):  # 32 samples of 64 KiB spread over the file
        off = (size - 65536) * i // 31 // 4096 * 4096
        f.seek(off)
        print(off // 4096, hashlib.sha256(f.read(65536)).hexdigest())
PY

cat >"$R/usr/local/sbin/livemount-app" <<'APP'
#!/bin/sh
# The sample application: checks its files and its data, logs the boot, powers off.
say() { echo "LIVEMOUNT-GUEST: $*" >/dev/console; }
up() { cut -d' ' -f1 /proc/uptime; }
say "multi-user.target reached (uptime $(up) s)"
ok=1
cd /opt/app
cut -d' ' -f3- CHECKSUMS | xargs cksum | cmp -s - CHECKSUMS || { ok=0; say "application files BAD"; }
files=$(wc -l <CHECKSUMS)
samples=0
if mountpoint -q /data; then
  while read -r block sum; do
    got=$(dd if=/data/volume.bin bs=4096 skip="$block" count=16 status=none | sha256sum | cut -d' ' -f1)
    [ "$got" = "$sum" ] || { ok=0; say "data sample at block $block BAD"; }
    samples=$((samples + 1))
  done </opt/app/data-samples
else
  ok=0; say "the data disk is not mounted"
fi
if [ $ok = 1 ]; then say "data ok ($files files and $samples data samples verified)"; else say "data BAD"; fi
n=$(( $(wc -l </var/lib/livemount-app/boot-log.txt 2>/dev/null || echo 0) + 1 ))
echo "boot $n" >>/var/lib/livemount-app/boot-log.txt
mountpoint -q /data && echo "boot $n" >>/data/boot-log.txt
sync
say "wrote /var/lib/livemount-app/boot-log.txt (boot $n)"
say "app ready (uptime $(up) s)"
say "powering off"
systemctl --no-block poweroff
APP
chmod 755 "$R/usr/local/sbin/livemount-app"
cat >"$R/etc/systemd/system/livemount-app.service" <<'UNIT'
[Unit]
Description=livemount sample application
After=multi-user.target
RequiresMountsFor=/opt/app

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/livemount-app

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/livemount-app.service "$R/etc/systemd/system/multi-user.target.wants/"

# --- the system disk: MBR + syslinux, FAT boot partition, ext4 root -----------------------
source "$(dirname "$0")/lib.sh"
ROOT_MIB=$(( $(du -sm "$R" | cut -f1) * 5 / 4 + 512 ))
mkfs.ext4 -q -F -L lm-root -d "$R" "$T/root.img" "${ROOT_MIB}M" >/dev/null
DISK=$T/system.raw
make_boot_disk "$DISK" "$T" 96 "$R/boot/vmlinuz-$KVER" "$R/boot/initrd.img-$KVER" initrd.img \
  "root=LABEL=lm-root rw console=ttyS0 quiet panic=-1" "$T/root.img"
rm -rf "$R" "$T/root.img"

# --- the data disk: ext4, no partition table ----------------------------------------------
DATA=$T/data.raw
mkfs.ext4 -q -F -L lm-data -m 0 -b 4096 -N 256 -J size=16 -d "$D" "$DATA" "$((DATA_BYTES >> 20))M" >/dev/null
rm -rf "$D"

if [ "$FLAVOUR" = kvm ]; then
  qemu-img convert -q -f raw -O qcow2 "$DISK" "$OUT/$NAME.qcow2"
  rm -f "$DISK"
  qemu-img convert -q -f raw -O qcow2 "$DATA" "$OUT/$NAME-data.qcow2"
  write_libvirt_xml "$OUT" "$NAME" 512 "$NAME.qcow2" "$NAME-data.qcow2"
else
  qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$DISK" "$OUT/$NAME.vmdk"
  rm -f "$DISK"
  qemu-img convert -q -f raw -O vmdk -o subformat=monolithicFlat "$DATA" "$OUT/${NAME}_1.vmdk"
  write_vmx "$OUT" "$NAME" 512 debian12-64 "$NAME.vmdk" "${NAME}_1.vmdk"
fi
echo "made $FLAVOUR Debian 12 VM '$NAME' in $OUT (application $APP_MIB MiB, data disk $((DATA_BYTES >> 20)) MiB)" >&2
