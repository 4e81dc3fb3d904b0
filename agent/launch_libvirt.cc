// `run --hypervisor libvirt`: the VM defined and started through libvirt's C API (the
// library virsh itself uses). The domain XML is the copy's configuration as
// guest/libvirt_config.cc writes it; isolated NICs join `livemount-isolated`, a network
// with no uplink and no address that is defined and started here when missing.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <fmt/format.h>

#include "agent/launch.h"

namespace lm {

namespace {

constexpr const char* kIsolated = "livemount-isolated";
constexpr const char* kIsolatedXml =
    "<network>\n  <name>livemount-isolated</name>\n"
    "  <bridge name='lm-isolated0' stp='on' delay='0'/>\n</network>\n";

// libvirt prints its errors on stderr unless told otherwise; ours carry them instead.
void Quiet(void*, virErrorPtr) {}

Status LibvirtError(const std::string& what) {
  const char* m = virGetLastErrorMessage();
  return Status::IoError(what + ": " + (m ? m : "unknown libvirt error"));
}

// Owners of libvirt's handles.
struct Conn {
  virConnectPtr p = nullptr;
  ~Conn() {
    if (p) virConnectClose(p);
  }
};
struct Dom {
  virDomainPtr p = nullptr;
  ~Dom() {
    if (p) virDomainFree(p);
  }
};
struct Net {
  virNetworkPtr p = nullptr;
  ~Net() {
    if (p) virNetworkFree(p);
  }
};

class LibvirtLauncher : public Launcher {
 public:
  LibvirtLauncher(std::string uri, std::string domain_type) : uri_(std::move(uri)), type_(std::move(domain_type)) {
    virSetErrorFunc(nullptr, Quiet);
  }

  Status Start(const VmConfig& c, RunRecord* r) override {
    Conn conn;
    LM_RETURN_IF_ERROR(Connect(&conn));
    Dom existing{virDomainLookupByName(conn.p, c.name.c_str())};
    if (existing.p) return Status::Exists(fmt::format("{} already has a domain named {}; pick another --name", uri_, c.name));
    for (const VmNic& n : c.nics) {
      if (n.network == kIsolated) {
        LM_RETURN_IF_ERROR(EnsureIsolatedNetwork(conn));
        break;
      }
    }
    std::string xml = FormatLibvirtXml(c, "", type_, r->serial_log);
    Dom dom{virDomainDefineXML(conn.p, xml.c_str())};
    if (!dom.p) return LibvirtError("libvirt did not define " + c.name);
    if (virDomainCreate(dom.p) != 0) {
      Status s = LibvirtError("libvirt did not start " + c.name);
      virDomainUndefine(dom.p);
      return s;
    }
    r->libvirt_uri = uri_;
    r->console = fmt::format("virsh -c {} console {}", uri_, c.name);
    return Status::Ok();
  }

  Status Stop(const RunRecord& r) override {
    Conn conn;
    LM_RETURN_IF_ERROR(Connect(&conn));
    Dom dom{virDomainLookupByName(conn.p, r.name.c_str())};
    if (!dom.p) return Status::Ok();  // already gone
    if (virDomainIsActive(dom.p) == 1 && virDomainDestroy(dom.p) != 0) {
      return LibvirtError("libvirt did not power off " + r.name);
    }
    unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                     VIR_DOMAIN_UNDEFINE_NVRAM;
    if (virDomainUndefineFlags(dom.p, flags) != 0) return LibvirtError("libvirt did not undefine " + r.name);
    return Status::Ok();
  }

  std::string State(const RunRecord& r) override {
    Conn conn;
    if (!Connect(&conn).ok()) return "unknown (libvirt unreachable)";
    Dom dom{virDomainLookupByName(conn.p, r.name.c_str())};
    if (!dom.p) return "gone";
    int state = 0, reason = 0;
    if (virDomainGetState(dom.p, &state, &reason, 0) != 0) return "unknown";
    switch (state) {
      case VIR_DOMAIN_RUNNING: return "running";
      case VIR_DOMAIN_PAUSED: return "paused";
      case VIR_DOMAIN_SHUTDOWN: return "shutting down";
      case VIR_DOMAIN_SHUTOFF: return "shut off";
      case VIR_DOMAIN_CRASHED: return "crashed";
      default: return "unknown";
    }
  }

 private:
  Status Connect(Conn* c) {
    c->p = virConnectOpen(uri_.c_str());
    if (!c->p) return LibvirtError("cannot connect to libvirt at " + uri_ + " (is libvirtd running?)");
    return Status::Ok();
  }

  Status EnsureIsolatedNetwork(Conn& conn) {
    Net net{virNetworkLookupByName(conn.p, kIsolated)};
    if (!net.p) {
      net.p = virNetworkDefineXML(conn.p, kIsolatedXml);
      if (!net.p) return LibvirtError("libvirt did not define the network " + std::string(kIsolated));
    }
    if (virNetworkIsActive(net.p) != 1 && virNetworkCreate(net.p) != 0) {
      return LibvirtError("libvirt did not start the network " + std::string(kIsolated));
    }
    return Status::Ok();
  }

  std::string uri_, type_;
};

}  // namespace

std::unique_ptr<Launcher> MakeLibvirtLauncher(const std::string& uri, const std::string& domain_type) {
  return std::make_unique<LibvirtLauncher>(uri, domain_type);
}

}  // namespace lm
