// `livemount run`'s decisions (agent/launch.h): a recovered VM's new identity and network,
// QEMU's command line for each controller, bus and NIC, and run records that refuse what
// they did not write.
#include <catch2/catch.hpp>

#include <algorithm>

#include "agent/launch.h"
#include "base/env.h"
#include "base/state_layout.h"
#include "test/test_util.h"

using namespace lm;

namespace {

VmConfig Sample() {
  VmConfig c;
  c.name = "web01";
  c.uuid = "564d8a21-0b3c-4d5e-6f70-8192a3b4c5d6";
  c.memory_mib = 2048;
  c.vcpus = 2;
  c.controllers = {{DiskBus::kScsi, 0, "pvscsi"}, {DiskBus::kSata, 0, ""}};
  c.disks = {{"/m/web01/x/web01.raw", "raw", DiskBus::kScsi, 0, 0, false},
             {"/m/web01/x/data, with comma.raw", "raw", DiskBus::kScsi, 0, 1, false},
             {"/iso/debian.iso", "raw", DiskBus::kSata, 0, 0, true},
             {"/m/web01/x/fast.qcow2", "qcow2", DiskBus::kVirtio, 0, 0, false},
             {"/m/web01/x/nv.raw", "raw", DiskBus::kNvme, 0, 0, false}};
  c.nics = {{"vmxnet3", "00:50:56:01:02:03", "VM Network", ""}, {"e1000", "", "", "br-prod"}};
  return c;
}

bool Has(const std::vector<std::string>& args, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); i++) {
    if (args[i] == flag && args[i + 1] == value) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a recovered VM gets a new identity and never joins the original's network", "[launch]") {
  VmConfig c = Sample();
  RecoveryOptions o;
  o.name = "web01-rec";
  VmConfig r = AdaptForRecovery(c, o);
  CHECK(r.name == "web01-rec");
  CHECK(r.uuid != c.uuid);
  CHECK(CanonicalUuid(r.uuid) == r.uuid);
  CHECK(r.uuid[14] == '4');
  REQUIRE(r.nics.size() == 2);
  for (const VmNic& n : r.nics) {
    CHECK(n.mac.rfind("52:54:00:", 0) == 0);
    CHECK(n.mac.size() == 17);
    CHECK(n.network == "livemount-isolated");
    CHECK(n.bridge.empty());
  }
  CHECK(r.nics[0].mac != c.nics[0].mac);
  CHECK(r.nics[0].mac != r.nics[1].mac);
  CHECK(r.disks.size() == c.disks.size());
  CHECK(r.memory_mib == 2048);

  o.network = "none";
  CHECK(AdaptForRecovery(c, o).nics.empty());
  o.network = "br-lab";
  VmConfig b = AdaptForRecovery(c, o);
  CHECK(b.nics.at(0).bridge == "br-lab");
  CHECK(b.nics.at(0).network.empty());
  // The bridge reaches libvirt's domain as such.
  std::string xml = FormatLibvirtXml(b, "", "qemu");
  CHECK(xml.find("<interface type='bridge'>\n      <source bridge='br-lab'/>") != std::string::npos);
}

TEST_CASE("QEMU's command line keeps every controller, bus and disk", "[launch]") {
  QemuPaths p{"/s/runs/web01.pid", "/s/runs/web01.console", "/s/runs/web01.serial.log", "/s/runs/web01.qmp"};
  RecoveryOptions o;
  o.name = "web01-rec";
  auto args = QemuArgs(AdaptForRecovery(Sample(), o), p, "tcg");
  REQUIRE(args.ok());
  const auto& a = *args;
  CHECK(Has(a, "-machine", "pc,accel=tcg"));
  CHECK(Has(a, "-m", "2048"));
  CHECK(Has(a, "-smp", "2"));
  CHECK(Has(a, "-name", "guest=web01-rec"));
  CHECK(Has(a, "-device", "pvscsi,id=scsi0"));
  CHECK(Has(a, "-device", "ahci,id=sata0"));
  CHECK(Has(a, "-drive", "file=/m/web01/x/web01.raw,format=raw,if=none,id=disk0,cache=writeback"));
  CHECK(Has(a, "-device", "scsi-hd,drive=disk0,bus=scsi0.0,scsi-id=0,bootindex=1"));
  // A comma in a path is doubled, as QEMU's option syntax wants.
  CHECK(Has(a, "-drive", "file=/m/web01/x/data,, with comma.raw,format=raw,if=none,id=disk1,cache=writeback"));
  CHECK(Has(a, "-device", "scsi-hd,drive=disk1,bus=scsi0.0,scsi-id=1"));
  CHECK(Has(a, "-drive", "file=/iso/debian.iso,format=raw,if=none,id=disk2,cache=writeback,media=cdrom,readonly=on"));
  CHECK(Has(a, "-device", "ide-cd,drive=disk2,bus=sata0.0"));
  CHECK(Has(a, "-device", "virtio-blk-pci,drive=disk3"));
  CHECK(Has(a, "-device", "nvme,drive=disk4,serial=livemount4"));
  // Isolated NICs: user networking with restrict=on (no host, no outside).
  int restricted = static_cast<int>(std::count_if(a.begin(), a.end(), [](const std::string& s) {
    return s.rfind("user,restrict=on,model=", 0) == 0;
  }));
  CHECK(restricted == 2);
  CHECK(Has(a, "-serial", "chardev:serial0"));
  CHECK(Has(a, "-pidfile", "/s/runs/web01.pid"));
  CHECK(a.back() == "-daemonize");

  VmConfig none = Sample();
  none.nics.clear();
  auto n = QemuArgs(none, p, "kvm");
  REQUIRE(n.ok());
  CHECK(Has(*n, "-nic", "none"));
  CHECK(Has(*n, "-machine", "pc,accel=kvm"));

  VmConfig odd = Sample();
  odd.controllers[0].model = "buslogic";
  CHECK_FALSE(QemuArgs(odd, p, "tcg").ok());  // QEMU has no BusLogic: said, not guessed
}

TEST_CASE("run records: written atomically, refused when not ours", "[launch]") {
  test::TempDir dir;
  std::string state = dir / "state";
  RunRecord r;
  r.name = "web01-rec";
  r.hypervisor = "qemu";
  r.vm = "web01";
  r.backup = "20261127T080000Z";
  r.mountpoint = "/mnt/lm";
  r.pid = 4242;
  r.serial_log = state + "/runs/web01-rec.serial.log";
  REQUIRE(SaveRunRecord(state, r).ok());
  auto back = LoadRunRecord(state, "web01-rec");
  REQUIRE(back.ok());
  CHECK(back->pid == 4242);
  CHECK(back->backup == r.backup);
  auto all = ListRunRecords(state);
  REQUIRE(all.ok());
  CHECK(all->size() == 1);

  CHECK(LoadRunRecord(state, "other").status().code() == Code::kNotFound);
  CHECK_FALSE(LoadRunRecord(state, "../web01-rec").ok());
  std::string path = *StateLayout(state).RunFile("web01-rec", ".json");
  auto rewrite = [&](const std::string& text) { test::WriteFile(path, text); };
  rewrite("not json");
  CHECK(LoadRunRecord(state, "web01-rec").status().code() == Code::kCorrupt);
  rewrite(R"({"format":"livemount-run","name":"other","hypervisor":"qemu","vm":"a","backup":"b","mountpoint":"/m"})");
  CHECK_FALSE(LoadRunRecord(state, "web01-rec").ok());
  rewrite(R"({"format":"livemount-run","name":"web01-rec","hypervisor":"xen","vm":"a","backup":"b","mountpoint":"/m"})");
  CHECK_FALSE(LoadRunRecord(state, "web01-rec").ok());
  rewrite(R"({"format":"livemount-run","name":"web01-rec","hypervisor":"qemu","vm":1,"backup":"b","mountpoint":"/m"})");
  CHECK_FALSE(LoadRunRecord(state, "web01-rec").ok());
  REQUIRE(RemoveRunRecord(state, "web01-rec").ok());
  CHECK(ListRunRecords(state)->empty());

  CHECK(CheckRunName("web01-rec").ok());
  CHECK_FALSE(CheckRunName("").ok());
  CHECK_FALSE(CheckRunName(".hidden").ok());
  CHECK_FALSE(CheckRunName("-flag").ok());
  CHECK_FALSE(CheckRunName("a/b").ok());
  CHECK_FALSE(CheckRunName(std::string(65, 'a')).ok());
}
