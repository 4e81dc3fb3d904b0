#!/usr/bin/env bash
# Installs the Debian 12 packages that livemount's build, tests and demo need.
# Only what is missing is installed; safe to run again. Needs root (or sudo).
#   tools/install-deps.sh [build|test|demo|bench]...   (default: build test)
#   groups: build test demo bench guest s3
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config git python3
  librocksdb-dev libfuse3-dev fuse3 libcli11-dev libfmt-dev catch2
  libzstd-dev libssl-dev libxxhash-dev nlohmann-json3-dev
  zlib1g-dev libext2fs-dev ntfs-3g-dev libncurses-dev libcurl4-openssl-dev libxml2-dev
  libmicrohttpd-dev libsystemd-dev libvirt-dev)
# What the sample VMs are made of and booted with (tools/make-sample-vm.sh; mmdebstrap: --distro debian).
guest_pkgs=(linux-image-cloud-amd64 busybox-static syslinux syslinux-common mtools dosfstools mmdebstrap
  fdisk cpio e2fsprogs qemu-system-x86)
# NFS export (livemount export / mount --export) and its clients in the tests.
nfs_pkgs=(nfs-ganesha nfs-ganesha-vfs rpcbind)
# Guest disks of the guest-file tests (mkntfs, ntfscp), the file manager's test (tmux),
# and the parsers' fuzz targets (clang's libFuzzer).
# libvirt in its default configuration (the overlay's extended attributes: boot_libvirt).
libvirt_pkgs=(libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu)
# A single-host Ceph cluster with a RADOS Gateway (test/integration/ceph/cluster.sh).
ceph_pkgs=(ceph-mon ceph-mgr ceph-osd radosgw ceph-common curl python3-boto3)
# The metrics endpoint's format check (the Prometheus client library's own parser; the prometheus
# package would start a Prometheus server on install) and the systemd units' check.
# virt-xml-validate (libvirt-clients) runs xmllint; the man page is checked with man and groff.
ops_pkgs=(python3-prometheus-client systemd curl libxml2-utils man-db)
test_pkgs=("${ceph_pkgs[@]}" "${ops_pkgs[@]}" qemu-utils python3 attr "${guest_pkgs[@]}" "${nfs_pkgs[@]}" libnfs-utils qemu-block-extra
  ntfs-3g tmux clang "${libvirt_pkgs[@]}")
demo_pkgs=(qemu-utils bc python3 curl "${guest_pkgs[@]}" "${nfs_pkgs[@]}" qemu-block-extra)
bench_pkgs=(restic fio)

want=()
[ $# -eq 0 ] && set -- build test
for group in "$@"; do
  case "$group" in
    guest) want+=("${guest_pkgs[@]}") ;;
    build) want+=("${build_pkgs[@]}") ;;
    test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    demo) want+=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
    bench) want+=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
    s3) want+=("${ceph_pkgs[@]}") ;;
    *) echo "install-deps: unknown group '$group' (build|test|demo|bench|guest|s3)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# de-duplicate
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
