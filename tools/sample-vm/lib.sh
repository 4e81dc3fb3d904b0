# What the sample VMs share (sourced by make-sample-vm.sh and debian.sh): the boot disk's
# layout, and the hypervisor configuration: a libvirt domain for the KVM flavour, a .vmx
# and an empty .nvram for the VMware one.
#   make_boot_disk DISK TMPDIR BOOT_MIB KERNEL INITRD INITRD_NAME APPEND PART2_IMAGE
#   write_libvirt_xml OUT NAME MEMORY_MIB DISK.qcow2...  (vda, vdb, ... on virtio)
#   write_vmx OUT NAME MEMORY_MIB GUEST_OS DISK.vmdk...  (scsi0:0, scsi0:1, ... on pvscsi)

# An MBR disk booted by syslinux: a bootable FAT partition of BOOT_MIB holding the kernel,
# the initrd (as INITRD_NAME) and syslinux.cfg (serial console, kernel command line
# APPEND), then PART2_IMAGE as the second partition. Built without mounting anything.
make_boot_disk() {
  local disk=$1 tmp=$2 boot_mib=$3 kernel=$4 initrd=$5 initrd_name=$6 append=$7 part2=$8
  local part2_mib=$(( ($(stat -c %s "$part2") + 1048575) >> 20 ))
  truncate -s $(( (1 + boot_mib + part2_mib) << 20 )) "$disk"
  sfdisk -q "$disk" <<PART
label: dos
start=2048, size=$((boot_mib * 2048)), type=6, bootable
start=$(( (1 + boot_mib) * 2048 )), type=83
PART
  mkfs.fat -F 16 -n BOOT -C "$tmp/boot.img" $((boot_mib * 1024)) >/dev/null
  cat >"$tmp/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD $initrd_name
  APPEND $append
CFG
  mcopy -i "$tmp/boot.img" "$kernel" ::vmlinuz
  mcopy -i "$tmp/boot.img" "$initrd" "::$initrd_name"
  mcopy -i "$tmp/boot.img" "$tmp/syslinux.cfg" ::syslinux.cfg
  syslinux --install "$tmp/boot.img"
  dd if="$tmp/boot.img" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$part2" of="$disk" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none
  rm -f "$tmp/boot.img" "$tmp/syslinux.cfg"
}

write_libvirt_xml() {
  local out=$1 name=$2 mib=$3; shift 3
  local letters=abcdefghijklmnop i=0 disk
  {
    echo "<domain type='kvm'>"
    echo "  <name>$name</name>"
    echo "  <memory unit='MiB'>$mib</memory>"
    echo "  <vcpu>1</vcpu>"
    echo "  <os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>"
    echo "  <features><acpi/></features>"
    echo "  <devices>"
    for disk in "$@"; do
      echo "    <disk type='file' device='disk'>"
      echo "      <driver name='qemu' type='qcow2'/>"
      echo "      <source file='$disk'/>"
      echo "      <target dev='vd${letters:i:1}' bus='virtio'/>"
      echo "    </disk>"
      i=$((i + 1))
    done
    echo "    <serial type='pty'/><console type='pty'/>"
    echo "  </devices>"
    echo "</domain>"
  } >"$out/$name.xml"
}

write_vmx() {
  local out=$1 name=$2 mib=$3 guest_os=$4; shift 4
  local i=0 disk
  {
    echo '.encoding = "UTF-8"'
    echo 'config.version = "8"'
    echo 'virtualHW.version = "14"'
    echo "displayName = \"$name\""
    echo "guestOS = \"$guest_os\""
    echo "memSize = \"$mib\""
    echo 'numvcpus = "1"'
    echo 'scsi0.present = "TRUE"'
    echo 'scsi0.virtualDev = "pvscsi"'
    for disk in "$@"; do
      echo "scsi0:$i.present = \"TRUE\""
      echo "scsi0:$i.fileName = \"$disk\""
      i=$((i + 1))
    done
    echo 'serial0.present = "TRUE"'
    echo "nvram = \"$name.nvram\""
  } >"$out/$name.vmx"
  head -c 8684 /dev/zero >"$out/$name.nvram"
}
