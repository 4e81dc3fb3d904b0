// export: serve a running live mount over NFS (nfs-ganesha, run by the media agent).
#include <fmt/core.h>
#include <unistd.h>

#include "agent/control_client.h"
#include "agent/media_agent.h"
#include "agent/nfs_export.h"
#include "base/env.h"
#include "tools/cli/commands.h"
#include "tools/cli/config.h"

namespace lm::cli {

using nlohmann::json;

void AddExportOptions(CLI::App* c, ExportOptions* e) {
  const Config& cfg = CurrentConfig();  // the configuration file's settings are the defaults
  if (cfg.bind) e->bind = *cfg.bind;
  if (cfg.nfs_port) e->nfs_port = *cfg.nfs_port;
  if (cfg.mount_port) e->mount_port = *cfg.mount_port;
  if (!cfg.clients.empty()) e->clients = cfg.clients;
  c->add_option("--bind", e->bind, "Address the NFS server listens on")->capture_default_str();
  c->add_option("--nfs-port", e->nfs_port, "NFS port (ESXi needs 2049)")->capture_default_str();
  c->add_option("--mount-port", e->mount_port, "MOUNT protocol port (NFSv3)")->capture_default_str();
  c->add_option("--client", e->clients,
                "Host, address or network (10.0.0.0/24) that may mount; repeatable (default: 127.0.0.1 only)");
}

namespace {

int Export(const std::string& mountpoint, ExportOptions e, bool stop, bool as_json) {
  auto agent = ControlClient::ForMount(mountpoint);
  if (!agent.ok()) return Report(agent.status());
  if (stop) {
    auto reply = agent->Unexport();
    if (!reply.ok()) return Report(reply.status());
    if (as_json) PrintJson(control::Encode(*reply));
    else fmt::print("{} {}\n", reply->was_exported ? "stopped the NFS export of" : "was not exported:", mountpoint);
    return 0;
  }
  auto reply = agent->Export({e.bind, e.nfs_port, e.mount_port, e.clients, e.read_only});
  if (!reply.ok()) return Report(reply.status());
  if (as_json) {
    PrintJson(control::Encode(*reply));
    return 0;
  }
  // The agent's view of the options (it knows the absolute mountpoint and whether it is read-only).
  e.mountpoint = reply->path;
  e.read_only = reply->read_only;
  std::string server = AdvertisedAddress(e);
  fmt::print("{}", HypervisorInstructions(e, server));
  // What 'latest' resolves to now, for QEMU nfs:// URLs (which cannot use the symlink).
  if (auto vms = ListDir(mountpoint); vms.ok()) {
    std::string lines;
    for (auto& vm : *vms) {
      char id[256];
      ssize_t n = ::readlink(JoinPath(JoinPath(mountpoint, vm), "latest").c_str(), id, sizeof id - 1);
      if (n <= 0) continue;
      id[n] = '\0';
      lines += fmt::format("  {}/latest is {}: nfs://{}{}/{}/{}/<disk>\n", vm, id, server, e.mountpoint, vm, id);
    }
    if (!lines.empty()) fmt::print("\nnewest backup copies now (for QEMU nfs:// URLs):\n{}", lines);
  }
  fmt::print("\nstop with: livemount export --stop {}  (livemount umount stops it too)\n", mountpoint);
  return 0;
}

}  // namespace

void RegisterExportCommands(CLI::App& app, int* exit_code) {
  auto* c = app.add_subcommand("export", "Serve a live mount over NFS for a hypervisor (nfs-ganesha)");
  auto mp = std::make_shared<std::string>();
  auto e = std::make_shared<ExportOptions>();
  auto stop = std::make_shared<bool>(false);
  auto as_json = std::make_shared<bool>(false);
  c->add_option("MOUNTPOINT", *mp, "Mountpoint of a running livemount mount")->required();
  AddExportOptions(c, e.get());
  c->add_flag("--read-only", e->read_only, "Export read-only (clients cannot write to the overlay)");
  c->add_flag("--stop", *stop, "Stop the export (the mount stays)");
  c->add_flag("--json", *as_json, "Machine-readable output");
  c->callback([=] { *exit_code = Export(*mp, *e, *stop, *as_json); });
}

}  // namespace lm::cli
