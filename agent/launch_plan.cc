// What `livemount run` decides before any hypervisor is involved: the recovered VM's
// identity and network, and the run records under STATE/runs.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "agent/launch.h"
#include "base/env.h"
#include "base/names.h"
#include "base/state_layout.h"

namespace lm {

using nlohmann::json;

namespace {
constexpr const char* kIsolatedNetwork = "livemount-isolated";
constexpr uint64_t kMaxRecord = 64 * 1024;

std::string NewUuid() {
  std::string h = RandomHex(16);
  h[12] = '4';                                               // version 4 (random)
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];  // RFC 4122 variant
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

// 52:54:00 is the prefix QEMU and libvirt give their NICs (locally administered).
std::string NewMac() {
  std::string h = RandomHex(3);
  return "52:54:00:" + h.substr(0, 2) + ":" + h.substr(2, 2) + ":" + h.substr(4, 2);
}
}  // namespace

Status CheckRunName(const std::string& name) {
  if (name.size() <= 64 && IsValidName(name) && name[0] != '-') return Status::Ok();
  return Status::Invalid("invalid VM name '" + name +
                         "' for run (letters, digits, '.', '_' and '-', at most 64, not starting with '.' or '-')");
}

VmConfig AdaptForRecovery(VmConfig c, const RecoveryOptions& o) {
  c.name = o.name;
  c.uuid = NewUuid();
  if (o.network == "none") c.nics.clear();
  for (VmNic& n : c.nics) {
    n.mac = NewMac();
    n.network = o.network == "isolated" ? kIsolatedNetwork : "";
    n.bridge = o.network == "isolated" ? "" : o.network;
  }
  return c;
}

Status SaveRunRecord(const std::string& state_dir, const RunRecord& r) {
  StateLayout layout(state_dir);
  LM_ASSIGN_OR_RETURN(std::string path, layout.RunFile(r.name, ".json"));
  LM_RETURN_IF_ERROR(MkdirAll(layout.RunsDir()));
  json j = {{"format", "livemount-run"}, {"name", r.name},     {"hypervisor", r.hypervisor},
            {"vm", r.vm},                {"backup", r.backup}, {"mountpoint", r.mountpoint},
            {"copy_dir", r.copy_dir},    {"libvirt_uri", r.libvirt_uri}, {"pid", r.pid},
            {"console", r.console},      {"serial_log", r.serial_log},   {"qmp", r.qmp},
            {"started_unix", r.started_unix}};
  return Env::Default()->WriteFileAtomic(path, j.dump(2) + "\n");
}

Result<RunRecord> LoadRunRecord(const std::string& state_dir, const std::string& name) {
  LM_ASSIGN_OR_RETURN(std::string path, StateLayout(state_dir).RunFile(name, ".json"));
  if (!PathExists(path)) return Status::NotFound("no VM named " + name + " was started by livemount run (" + path + ")");
  LM_ASSIGN_OR_RETURN(std::string text, Env::Default()->ReadFile(path));
  if (text.size() > kMaxRecord) return Status::Corrupt(path + ": larger than 64 KiB; not a run record");
  json j = json::parse(text, nullptr, false);
  RunRecord r;
  try {
    if (!j.is_object() || j.value("format", "") != "livemount-run") return Status::Corrupt(path + ": not a run record");
    r.name = j.at("name");
    r.hypervisor = j.at("hypervisor");
    r.vm = j.at("vm");
    r.backup = j.at("backup");
    r.mountpoint = j.at("mountpoint");
    r.copy_dir = j.value("copy_dir", "");
    r.libvirt_uri = j.value("libvirt_uri", "");
    r.pid = j.value("pid", int64_t{0});
    r.console = j.value("console", "");
    r.serial_log = j.value("serial_log", "");
    r.qmp = j.value("qmp", "");
    r.started_unix = j.value("started_unix", int64_t{0});
  } catch (const json::exception& e) {
    return Status::Corrupt(path + ": " + e.what());
  }
  if (r.name != name) return Status::Corrupt(path + ": names " + r.name + ", not " + name);
  if (r.hypervisor != "libvirt" && r.hypervisor != "qemu") return Status::Corrupt(path + ": unknown hypervisor " + r.hypervisor);
  if (r.pid < 0) return Status::Corrupt(path + ": bad pid");
  return r;
}

Status RemoveRunRecord(const std::string& state_dir, const std::string& name) {
  LM_ASSIGN_OR_RETURN(std::string path, StateLayout(state_dir).RunFile(name, ".json"));
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::FromErrno(errno, path);
  return Env::Default()->FsyncDir(StateLayout(state_dir).RunsDir());
}

Result<std::vector<RunRecord>> ListRunRecords(const std::string& state_dir) {
  std::vector<RunRecord> out;
  std::string dir = StateLayout(state_dir).RunsDir();
  if (!PathExists(dir)) return out;
  LM_ASSIGN_OR_RETURN(auto names, ListDir(dir));
  for (const std::string& n : names) {
    if (n.size() <= 5 || n.compare(n.size() - 5, 5, ".json") != 0) continue;
    auto r = LoadRunRecord(state_dir, n.substr(0, n.size() - 5));
    if (r.ok()) out.push_back(std::move(r).value());
  }
  return out;
}

bool HostHasKvm() { return ::access("/dev/kvm", R_OK | W_OK) == 0; }

}  // namespace lm
