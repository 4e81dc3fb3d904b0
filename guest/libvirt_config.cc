// libvirt domain XML <-> VmConfig (guest/vm_config.h), read with libxml2.
#include <fmt/format.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cctype>
#include <cstring>
#include <map>
#include <memory>

#include "guest/vm_config.h"

namespace lm {

namespace {

constexpr const char* kNamespace = "https://livemount.invalid/xmlns/vm/1";
constexpr size_t kMaxXml = 1 << 20;

// Text that XML shows literally, in an element or an attribute.
std::string XmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '\'': out += "&apos;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

bool Is(const xmlNode* n, const char* name) {
  return n->type == XML_ELEMENT_NODE && std::strcmp(reinterpret_cast<const char*>(n->name), name) == 0;
}

std::string Attr(const xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, reinterpret_cast<const xmlChar*>(name));
  if (!v) return "";
  std::string s = reinterpret_cast<const char*>(v);
  xmlFree(v);
  return s;
}

std::string Text(const xmlNode* n) {
  xmlChar* v = xmlNodeGetContent(n);
  if (!v) return "";
  std::string s = reinterpret_cast<const char*>(v);
  xmlFree(v);
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

const xmlNode* Child(const xmlNode* n, const char* name) {
  for (const xmlNode* c = n->children; c; c = c->next) {
    if (Is(c, name)) return c;
  }
  return nullptr;
}

// libvirt's memory units -> MiB.
Result<uint64_t> MemoryMib(const std::string& value, std::string unit, const std::string& file) {
  char* end = nullptr;
  unsigned long long n = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end) return Status::Invalid(file + ": <memory>" + value + "</memory> is not a number");
  if (unit.empty()) unit = "KiB";
  static const std::map<std::string, uint64_t> kToKib = {{"KiB", 1},       {"k", 1},          {"MiB", 1024},
                                                          {"M", 1024},      {"GiB", 1 << 20},  {"G", 1 << 20},
                                                          {"TiB", 1u << 30}, {"T", 1u << 30}, {"b", 0},
                                                          {"bytes", 0}};
  auto it = kToKib.find(unit);
  if (it == kToKib.end()) return Status::Invalid(file + ": memory unit '" + unit + "' is not supported");
  uint64_t kib = it->second ? n * it->second : n / 1024;
  if (kib / 1024 < 4 || kib / 1024 > (16u << 20)) return Status::Invalid(file + ": memory out of range");
  return kib / 1024;
}

// "hda" -> 0, "hdc" -> 2 (IDE names have one letter).
int DevIndex(const std::string& dev) {
  return dev.size() == 3 && dev[2] >= 'a' && dev[2] <= 'd' ? dev[2] - 'a' : 0;
}

std::string DevName(const char* prefix, int index) {
  std::string s;
  index++;
  while (index > 0) {
    index--;
    s.insert(s.begin(), static_cast<char>('a' + index % 26));
    index /= 26;
  }
  return prefix + s;
}

}  // namespace

Result<VmConfig> ParseLibvirtXml(const std::string& text, const std::string& file) {
  if (text.size() > kMaxXml) return Status::Invalid(file + ": larger than 1 MiB; not a domain");
  // No network, no external entities, no DTD loading: a hostile file reads as itself.
  std::unique_ptr<xmlDoc, void (*)(xmlDoc*)> doc(
      xmlReadMemory(text.data(), static_cast<int>(text.size()), file.c_str(), nullptr,
                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING),
      xmlFreeDoc);
  if (!doc) return Status::Invalid(file + ": not well-formed XML");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!root || !Is(root, "domain")) return Status::Invalid(file + ": the root element is not <domain>");
  VmConfig c;
  if (auto n = Child(root, "name")) c.name = Text(n);
  if (c.name.empty()) return Status::Invalid(file + ": no <name>");
  if (auto n = Child(root, "uuid")) {
    std::string text = Text(n);
    c.uuid = text.find(' ') == std::string::npos ? CanonicalUuid(text) : "";  // spaces are VMware's
    if (c.uuid.empty()) return Status::Invalid(file + ": <uuid> is not a UUID");
  }
  auto mem = Child(root, "memory");
  if (!mem) return Status::Invalid(file + ": no <memory>");
  LM_ASSIGN_OR_RETURN(c.memory_mib, MemoryMib(Text(mem), Attr(mem, "unit"), file));
  if (auto n = Child(root, "vcpu")) {
    unsigned long v = std::strtoul(Text(n).c_str(), nullptr, 10);
    if (v < 1 || v > 768) return Status::Invalid(file + ": <vcpu> must be 1-768");
    c.vcpus = static_cast<unsigned>(v);
  }
  if (auto os = Child(root, "os")) {
    const xmlNode* loader = Child(os, "loader");
    if (Attr(os, "firmware") == "efi" || (loader && Attr(loader, "type") == "pflash")) c.firmware = Firmware::kUefi;
  }
  if (auto md = Child(root, "metadata")) {
    for (const xmlNode* n = md->children; n; n = n->next) {
      if (Is(n, "vm") && n->ns && std::strcmp(reinterpret_cast<const char*>(n->ns->href), kNamespace) == 0) {
        c.guest_os = Attr(n, "guest-os");
      }
    }
  }
  const xmlNode* devices = Child(root, "devices");
  std::map<std::string, int> next_index;  // disks without an address: in order per bus
  for (const xmlNode* d = devices ? devices->children : nullptr; d; d = d->next) {
    if (Is(d, "controller")) {
      std::string type = Attr(d, "type");
      VmController ctl;
      if (type == "scsi") ctl.bus = DiskBus::kScsi;
      else if (type == "sata") ctl.bus = DiskBus::kSata;
      else if (type == "nvme") ctl.bus = DiskBus::kNvme;
      else continue;  // ide, usb, pci, virtio-serial: implied or not VM-visible storage
      ctl.index = std::atoi(Attr(d, "index").c_str());
      std::string model = Attr(d, "model");
      ctl.model = model == "vmpvscsi" ? "pvscsi" : model;
      if (ctl.bus == DiskBus::kScsi && ctl.model.empty()) ctl.model = "lsilogic";  // libvirt's QEMU default
      c.controllers.push_back(ctl);
    } else if (Is(d, "disk")) {
      std::string device = Attr(d, "device");
      if (device != "disk" && device != "cdrom") continue;  // floppy, lun
      const xmlNode* source = Child(d, "source");
      const xmlNode* target = Child(d, "target");
      if (!target) return Status::Invalid(file + ": a <disk> without <target>");
      VmDisk disk;
      disk.cdrom = device == "cdrom";
      disk.file = source ? Attr(source, "file") : "";
      if (disk.file.empty()) {
        if (disk.cdrom) continue;  // an empty drive
        return Status::Invalid(file + ": a <disk> without <source file=...> (only file disks are supported)");
      }
      const xmlNode* driver = Child(d, "driver");
      disk.format = driver ? Attr(driver, "type") : "";
      if (disk.format.empty()) disk.format = "raw";
      if (disk.format != "raw" && disk.format != "qcow2" && disk.format != "vmdk") {
        return Status::Invalid(file + ": disk format '" + disk.format + "' is not supported");
      }
      std::string bus = Attr(target, "bus");
      if (bus == "scsi") disk.bus = DiskBus::kScsi;
      else if (bus == "sata") disk.bus = DiskBus::kSata;
      else if (bus == "ide") disk.bus = DiskBus::kIde;
      else if (bus == "virtio") disk.bus = DiskBus::kVirtio;
      else if (bus == "nvme") disk.bus = DiskBus::kNvme;
      else return Status::Invalid(file + ": disk bus '" + bus + "' is not supported");
      if (const xmlNode* a = Child(d, "address"); a && Attr(a, "type") == "drive") {
        // IDE: the channel is the address's bus (VMware's ide1:0 is bus 1, unit 0).
        disk.controller = std::atoi(Attr(a, disk.bus == DiskBus::kIde ? "bus" : "controller").c_str());
        disk.unit = std::atoi(Attr(a, "unit").c_str());
        // SCSI: VMware's unit is the target (SCSI id); libvirt's own unit is the LUN, and
        // domains that number their disks by LUN keep target 0.
        int target = std::atoi(Attr(a, "target").c_str());
        if (disk.bus == DiskBus::kScsi && target != 0) disk.unit = target;
      } else if (disk.bus == DiskBus::kIde) {
        int i = DevIndex(Attr(target, "dev"));
        disk.controller = i / 2;
        disk.unit = i % 2;
      } else {
        disk.unit = next_index[bus]++;
      }
      if (disk.controller < 0 || disk.controller > 3 || disk.unit < 0 || disk.unit > 63) {
        return Status::Invalid(file + ": disk address out of range");
      }
      c.disks.push_back(disk);
    } else if (Is(d, "interface")) {
      VmNic n;
      if (const xmlNode* m = Child(d, "mac")) n.mac = Attr(m, "address");
      if (const xmlNode* s = Child(d, "source")) {
        n.network = Attr(s, "network");
        n.bridge = Attr(s, "bridge");
      }
      const xmlNode* model = Child(d, "model");
      n.model = model ? Attr(model, "type") : "";
      if (n.model.empty()) n.model = "rtl8139";  // libvirt's QEMU default
      c.nics.push_back(n);
    }
  }
  return c;
}

std::string FormatLibvirtXml(const VmConfig& c, const std::string& vm_dir, const std::string& domain_type,
                             const std::string& serial_log) {
  std::string out = fmt::format("<domain type='{}'>\n  <name>{}</name>\n", XmlEscape(domain_type), XmlEscape(c.name));
  if (!c.uuid.empty()) out += fmt::format("  <uuid>{}</uuid>\n", XmlEscape(c.uuid));
  if (!c.guest_os.empty()) {
    out += fmt::format("  <metadata>\n    <livemount:vm xmlns:livemount='{}' guest-os='{}'/>\n  </metadata>\n", kNamespace,
                       XmlEscape(c.guest_os));
  }
  out += fmt::format("  <memory unit='MiB'>{}</memory>\n  <vcpu>{}</vcpu>\n", c.memory_mib, c.vcpus);
  out += c.firmware == Firmware::kUefi ? "  <os firmware='efi'>\n" : "  <os>\n";
  out += "    <type arch='x86_64'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n";
  out += "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n  <devices>\n";
  // NVMe disks have no libvirt bus here (libvirt 9.0): they go on SATA.
  auto bus_of = [](DiskBus b) { return b == DiskBus::kNvme ? DiskBus::kSata : b; };
  for (const VmController& ctl : c.controllers) {
    DiskBus b = bus_of(ctl.bus);
    if (b == DiskBus::kScsi) {
      std::string model = ctl.model == "pvscsi" ? "vmpvscsi" : ctl.model;
      out += fmt::format("    <controller type='scsi' index='{}' model='{}'/>\n", ctl.index, XmlEscape(model));
    } else if (b == DiskBus::kSata) {
      out += fmt::format("    <controller type='sata' index='{}'/>\n", ctl.index);
    }
  }
  std::map<DiskBus, int> next;
  for (const VmDisk& d : c.disks) {
    DiskBus b = bus_of(d.bus);
    const char* prefix = b == DiskBus::kVirtio ? "vd" : b == DiskBus::kIde ? "hd" : "sd";
    int index = b == DiskBus::kIde ? d.controller * 2 + d.unit : next[b]++;
    out += fmt::format("    <disk type='file' device='{}'>\n", d.cdrom ? "cdrom" : "disk");
    out += fmt::format("      <driver name='qemu' type='{}'/>\n", XmlEscape(d.format.empty() ? "raw" : d.format));
    std::string path = d.file.empty() || d.file[0] == '/' ? d.file : vm_dir + "/" + d.file;
    out += fmt::format("      <source file='{}'/>\n", XmlEscape(path));
    out += fmt::format("      <target dev='{}' bus='{}'/>\n", DevName(prefix, index), DiskBusName(b));
    if (d.cdrom) out += "      <readonly/>\n";
    if (b == DiskBus::kScsi) {  // a target (SCSI id) per disk, as VMware's scsi0:N: PVSCSI has no LUNs
      out += fmt::format("      <address type='drive' controller='{}' bus='0' target='{}' unit='0'/>\n", d.controller,
                         d.unit);
    } else if (b == DiskBus::kSata) {
      out += fmt::format("      <address type='drive' controller='{}' bus='0' target='0' unit='{}'/>\n", d.controller,
                         d.unit);
    } else if (b == DiskBus::kIde) {
      out += fmt::format("      <address type='drive' controller='0' bus='{}' target='0' unit='{}'/>\n", d.controller,
                         d.unit);
    }
    out += "    </disk>\n";
  }
  for (const VmNic& n : c.nics) {
    out += !n.bridge.empty()   ? fmt::format("    <interface type='bridge'>\n      <source bridge='{}'/>\n",
                                             XmlEscape(n.bridge))
           : n.network.empty() ? "    <interface type='user'>\n"
                               : fmt::format("    <interface type='network'>\n      <source network='{}'/>\n",
                                             XmlEscape(n.network));
    if (!n.mac.empty()) out += fmt::format("      <mac address='{}'/>\n", XmlEscape(n.mac));
    out += fmt::format("      <model type='{}'/>\n    </interface>\n", XmlEscape(n.model.empty() ? "e1000" : n.model));
  }
  out += serial_log.empty() ? "    <serial type='pty'/>\n"
                            : fmt::format("    <serial type='pty'>\n      <log file='{}' append='off'/>\n    </serial>\n",
                                          XmlEscape(serial_log));
  out += "    <console type='pty'/>\n  </devices>\n</domain>\n";
  return out;
}

}  // namespace lm
