// A VM's configuration in neutral terms, and its two forms: VMware's .vmx and libvirt's
// domain XML. `livemount run` (issue 17) defines a backed-up VM on a hypervisor of either
// family from this: a .vmx becomes a domain for libvirt/QEMU, a domain a .vmx for ESXi.
//
// What is kept: name, UUID, memory, vCPUs, firmware (BIOS or UEFI), the guest OS as VMware
// names it (in the domain's <metadata>, so a round trip keeps it), disk controllers and
// their models, disks and CD-ROMs (file, format, bus, controller, unit), and NICs (model,
// MAC, network). What neither side shares (VMware's tools options, libvirt's graphics,
// sound, USB...) is left out. Parsers are strict about what they read and bounded (a VM
// directory may be written by someone else): a bad value is an error naming the file and
// the key or element.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace lm {

enum class Firmware { kBios, kUefi };
enum class DiskBus { kScsi, kSata, kIde, kVirtio, kNvme };
const char* DiskBusName(DiskBus b);  // "scsi", "sata", "ide", "virtio", "nvme"

struct VmController {
  DiskBus bus = DiskBus::kScsi;
  int index = 0;
  std::string model;  // SCSI: "pvscsi", "lsilogic", "lsisas1068", "buslogic", "virtio-scsi"
};

struct VmDisk {
  std::string file;    // as the configuration names it: relative to the VM's directory, or absolute
  std::string format;  // "vmdk", "qcow2" or "raw"
  DiskBus bus = DiskBus::kScsi;
  int controller = 0, unit = 0;  // VMware's scsi0:1; libvirt's address controller/unit
  bool cdrom = false;
};

struct VmNic {
  std::string model;    // "e1000", "e1000e", "vmxnet3", "virtio", "rtl8139"
  std::string mac;      // "00:50:56:aa:bb:cc", lower case; "" when the hypervisor picks one
  std::string network;  // a network (VMware port group, libvirt network) name; "" for none
  std::string bridge;   // or a host bridge (libvirt <interface type='bridge'>)
};

struct VmConfig {
  std::string name;
  std::string uuid;  // canonical 8-4-4-4-12 lower-case hex, "" if none
  uint64_t memory_mib = 0;
  unsigned vcpus = 1;
  Firmware firmware = Firmware::kBios;
  std::string guest_os;  // VMware's guestOS ("other5xlinux-64", "windows2019srv-64"); "" if unknown
  std::vector<VmController> controllers;
  std::vector<VmDisk> disks;
  std::vector<VmNic> nics;
};

// "564d8a21-0b3c-...", from 32 hex digits with any spaces and dashes between (VMware's
// "56 4d 8a 21 ... 9c-1f ...", libvirt's with or without dashes); "" if not that.
std::string CanonicalUuid(const std::string& text);

// VMware .vmx: `key = "value"` lines, VMware's |XX escapes.
Result<VmConfig> ParseVmx(const std::string& text, const std::string& file);
std::string FormatVmx(const VmConfig& c);

// libvirt domain XML. `vm_dir`: where disk files named relative to the VM's directory are
// (libvirt wants absolute paths). `domain_type`: "kvm", or "qemu" where there is no KVM (TCG).
// `serial_log`: a file that also gets the serial console's output ("" for none).
Result<VmConfig> ParseLibvirtXml(const std::string& text, const std::string& file);
std::string FormatLibvirtXml(const VmConfig& c, const std::string& vm_dir, const std::string& domain_type = "kvm",
                             const std::string& serial_log = "");

}  // namespace lm
