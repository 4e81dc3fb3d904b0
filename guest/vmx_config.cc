// VMware .vmx <-> VmConfig (guest/vm_config.h).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include "guest/vm_config.h"

namespace lm {

namespace {

constexpr int kMaxControllers = 4;  // VMware: scsi0-3, sata0-3, nvme0-3; ide0-1
constexpr int kMaxUnits = 64;
constexpr int kMaxNics = 10;
constexpr size_t kMaxVmx = 1 << 20;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// VMware escapes a byte as |XX (hex) inside values.
std::string Unescape(const std::string& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); i++) {
    if (v[i] == '|' && i + 2 < v.size() + 0 && std::isxdigit(static_cast<unsigned char>(v[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(v[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(v[i]);
    }
  }
  return out;
}

std::string Escape(const std::string& v) {
  std::string out;
  for (unsigned char c : v) {
    if (c == '"' || c == '|' || c < 0x20 || c == 0x7f) out += fmt::format("|{:02X}", c);
    else out.push_back(static_cast<char>(c));
  }
  return out;
}

bool IsTrue(const std::string& v) { return Lower(v) == "true"; }

std::string VmwareUuid(const std::string& canonical) {
  std::string hex;
  for (char c : canonical) if (c != '-') hex.push_back(c);
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i == 16) out += "-";
    else if (i) out += " ";
    out += hex.substr(i, 2);
  }
  return out;
}

// "scsi0:1" -> bus, controller 0, unit 1.
bool DeviceKey(const std::string& dev, DiskBus* bus, int* controller, int* unit) {
  static const std::pair<const char*, DiskBus> kBuses[] = {
      {"scsi", DiskBus::kScsi}, {"sata", DiskBus::kSata}, {"ide", DiskBus::kIde}, {"nvme", DiskBus::kNvme}};
  for (auto& [prefix, b] : kBuses) {
    std::string p = prefix;
    if (dev.rfind(p, 0) != 0) continue;
    int c = -1, u = -1;
    char colon = 0;
    std::istringstream in(dev.substr(p.size()));
    if (!(in >> c >> colon >> u) || colon != ':' || !in.eof()) return false;
    *bus = b;
    *controller = c;
    *unit = u;
    return true;
  }
  return false;
}

std::string DiskFormat(const std::string& file) {
  std::string f = Lower(file);
  auto ends = [&](const char* s) {
    std::string e = s;
    return f.size() >= e.size() && f.compare(f.size() - e.size(), e.size(), e) == 0;
  };
  if (ends(".vmdk")) return "vmdk";
  if (ends(".qcow2")) return "qcow2";
  return "raw";
}

}  // namespace

Result<VmConfig> ParseVmx(const std::string& text, const std::string& file) {
  if (text.size() > kMaxVmx) return Status::Invalid(file + ": larger than 1 MiB; not a .vmx");
  std::map<std::string, std::string> kv;  // keys lower-cased: VMware's are case-insensitive
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    line_no++;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    size_t eq = line.find('=');
    auto bad = [&](const char* why) { return Status::Invalid(fmt::format("{}:{}: {}", file, line_no, why)); };
    if (eq == std::string::npos) return bad("expected key = \"value\"");
    std::string key = line.substr(start, eq - start);
    key.erase(key.find_last_not_of(" \t") + 1);
    std::string value = line.substr(eq + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t") + 1);
    if (value.size() < 2 || value.front() != '"' || value.back() != '"') return bad("the value is not quoted");
    if (key.empty()) return bad("empty key");
    kv[Lower(key)] = Unescape(value.substr(1, value.size() - 2));
  }
  auto get = [&](const std::string& k) -> std::string {
    auto it = kv.find(k);
    return it == kv.end() ? "" : it->second;
  };
  auto number = [&](const std::string& k, uint64_t lo, uint64_t hi, uint64_t dflt) -> Result<uint64_t> {
    std::string v = get(k);
    if (v.empty()) return dflt;
    char* end = nullptr;
    unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (*end || n < lo || n > hi) return Status::Invalid(fmt::format("{}: {} = \"{}\": expected {}-{}", file, k, v, lo, hi));
    return static_cast<uint64_t>(n);
  };
  VmConfig c;
  c.name = get("displayname");
  if (c.name.empty()) return Status::Invalid(file + ": no displayName");
  LM_ASSIGN_OR_RETURN(c.memory_mib, number("memsize", 4, 16u << 20, 0));
  if (c.memory_mib == 0) return Status::Invalid(file + ": no memSize");
  LM_ASSIGN_OR_RETURN(uint64_t vcpus, number("numvcpus", 1, 768, 1));
  c.vcpus = static_cast<unsigned>(vcpus);
  std::string fw = Lower(get("firmware"));
  if (fw == "efi") c.firmware = Firmware::kUefi;
  else if (!fw.empty() && fw != "bios") return Status::Invalid(file + ": firmware = \"" + fw + "\": expected bios or efi");
  c.guest_os = get("guestos");
  if (!get("uuid.bios").empty()) {
    c.uuid = CanonicalUuid(get("uuid.bios"));
    if (c.uuid.empty()) return Status::Invalid(file + ": uuid.bios is not 16 hex bytes");
  }
  // Controllers, then the devices on them, in key order (scsi0:0, scsi0:1, ...).
  for (const char* bus : {"scsi", "sata", "nvme"}) {
    for (int i = 0; i < kMaxControllers; i++) {
      std::string k = fmt::format("{}{}", bus, i);
      if (!IsTrue(get(k + ".present"))) continue;
      VmController ctl;
      DiskBus b;
      int unused1, unused2;
      DeviceKey(k + ":0", &b, &unused1, &unused2);
      ctl.bus = b;
      ctl.index = i;
      if (b == DiskBus::kScsi) {
        ctl.model = Lower(get(k + ".virtualdev"));
        if (ctl.model.empty()) ctl.model = "lsilogic";
        if (ctl.model != "pvscsi" && ctl.model != "lsilogic" && ctl.model != "lsisas1068" && ctl.model != "buslogic") {
          return Status::Invalid(file + ": " + k + ".virtualDev = \"" + ctl.model + "\": unknown SCSI controller");
        }
      }
      c.controllers.push_back(ctl);
    }
  }
  for (auto& [key, value] : kv) {
    if (key.size() < 9 || key.compare(key.size() - 8, 8, ".present") != 0) continue;
    std::string dev = key.substr(0, key.size() - 8);
    VmDisk d;
    if (!DeviceKey(dev, &d.bus, &d.controller, &d.unit) || !IsTrue(value)) continue;
    if (d.controller < 0 || d.controller >= kMaxControllers || d.unit < 0 || d.unit >= kMaxUnits) {
      return Status::Invalid(file + ": " + dev + ": no such controller or unit");
    }
    std::string type = Lower(get(dev + ".devicetype"));
    d.cdrom = type.find("cdrom") != std::string::npos;
    d.file = get(dev + ".filename");
    if (d.file.empty() || type == "atapi-cdrom" || type == "cdrom-raw") {
      if (d.cdrom) continue;  // a host drive, not a file of the VM
      return Status::Invalid(file + ": " + dev + " has no fileName");
    }
    if (d.file.find('\0') != std::string::npos) return Status::Invalid(file + ": " + dev + ".fileName holds a NUL");
    d.format = d.cdrom ? "raw" : DiskFormat(d.file);
    c.disks.push_back(d);
  }
  std::sort(c.disks.begin(), c.disks.end(), [](const VmDisk& a, const VmDisk& b) {
    return std::tie(a.bus, a.controller, a.unit) < std::tie(b.bus, b.controller, b.unit);
  });
  for (int i = 0; i < kMaxNics; i++) {
    std::string k = fmt::format("ethernet{}", i);
    if (!IsTrue(get(k + ".present"))) continue;
    VmNic n;
    n.model = Lower(get(k + ".virtualdev"));
    if (n.model.empty() || n.model == "vlance") n.model = "e1000";
    if (n.model != "e1000" && n.model != "e1000e" && n.model != "vmxnet3") {
      return Status::Invalid(file + ": " + k + ".virtualDev = \"" + n.model + "\": unknown NIC");
    }
    std::string type = Lower(get(k + ".addresstype"));
    n.mac = Lower(type == "static" ? get(k + ".address") : get(k + ".generatedaddress"));
    if (!n.mac.empty()) {
      bool ok = n.mac.size() == 17;
      for (size_t j = 0; ok && j < 17; j++) ok = j % 3 == 2 ? n.mac[j] == ':' : std::isxdigit(static_cast<unsigned char>(n.mac[j]));
      if (!ok) return Status::Invalid(file + ": " + k + ": \"" + n.mac + "\" is not a MAC address");
    }
    n.network = get(k + ".networkname");
    c.nics.push_back(n);
  }
  return c;
}

std::string FormatVmx(const VmConfig& c) {
  std::string out;
  auto put = [&](const std::string& k, const std::string& v) { out += k + " = \"" + Escape(v) + "\"\n"; };
  put(".encoding", "UTF-8");
  put("config.version", "8");
  put("virtualHW.version", "14");
  put("displayName", c.name);
  put("guestOS", c.guest_os.empty() ? "other-64" : c.guest_os);
  put("memSize", std::to_string(c.memory_mib));
  put("numvcpus", std::to_string(c.vcpus));
  if (c.firmware == Firmware::kUefi) put("firmware", "efi");
  if (!c.uuid.empty()) put("uuid.bios", VmwareUuid(c.uuid));
  // virtio has no VMware form: its disks go on a paravirtual SCSI controller.
  auto vmware_bus = [](DiskBus b) { return b == DiskBus::kVirtio ? DiskBus::kScsi : b; };
  std::map<std::pair<DiskBus, int>, std::string> controllers;
  for (const VmController& ctl : c.controllers) {
    std::string model = ctl.model == "virtio-scsi" ? "pvscsi" : ctl.model;
    controllers[{vmware_bus(ctl.bus), ctl.index}] = ctl.bus == DiskBus::kVirtio ? "pvscsi" : model;
  }
  std::map<std::pair<DiskBus, int>, int> next_unit;
  std::vector<std::pair<std::string, const VmDisk*>> placed;
  for (const VmDisk& d : c.disks) {
    DiskBus b = vmware_bus(d.bus);
    int ctl = d.bus == DiskBus::kVirtio ? 0 : d.controller;
    int unit = d.bus == DiskBus::kVirtio ? next_unit[{b, ctl}]++ : d.unit;
    if (b == DiskBus::kScsi && unit == 7) {  // unit 7 is the SCSI controller's own
      unit = 8;
      if (d.bus == DiskBus::kVirtio) next_unit[{b, ctl}] = 9;
    }
    if (b != DiskBus::kIde && !controllers.count({b, ctl})) controllers[{b, ctl}] = b == DiskBus::kScsi ? "pvscsi" : "";
    placed.push_back({fmt::format("{}{}:{}", DiskBusName(b), ctl, unit), &d});
  }
  for (auto& [key, model] : controllers) {
    std::string k = fmt::format("{}{}", DiskBusName(key.first), key.second);
    put(k + ".present", "TRUE");
    if (key.first == DiskBus::kScsi) put(k + ".virtualDev", model.empty() ? "pvscsi" : model);
  }
  for (auto& [dev, d] : placed) {
    put(dev + ".present", "TRUE");
    put(dev + ".fileName", d->file);
    if (d->cdrom) put(dev + ".deviceType", "cdrom-image");
  }
  for (size_t i = 0; i < c.nics.size(); i++) {
    const VmNic& n = c.nics[i];
    std::string k = fmt::format("ethernet{}", i);
    put(k + ".present", "TRUE");
    put(k + ".virtualDev", n.model == "e1000" || n.model == "e1000e" ? n.model : "vmxnet3");
    if (!n.mac.empty()) {
      put(k + ".addressType", "static");
      put(k + ".address", n.mac);
    } else {
      put(k + ".addressType", "generated");
    }
    if (!n.network.empty() || !n.bridge.empty()) put(k + ".networkName", n.network.empty() ? n.bridge : n.network);
  }
  return out;
}

std::string CanonicalUuid(const std::string& v) {
  std::string hex;
  for (char c : v) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex.push_back(static_cast<char>(std::tolower(c)));
    else if (c != ' ' && c != '-') return "";
  }
  if (hex.size() != 32) return "";
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

const char* DiskBusName(DiskBus b) {
  switch (b) {
    case DiskBus::kScsi: return "scsi";
    case DiskBus::kSata: return "sata";
    case DiskBus::kIde: return "ide";
    case DiskBus::kVirtio: return "virtio";
    case DiskBus::kNvme: return "nvme";
  }
  return "scsi";
}

}  // namespace lm
