// VM configuration translation (guest/vm_config.h): .vmx to libvirt domain XML and back
// keeps disks, memory, vCPUs, firmware, NICs and controllers; every generated domain passes
// libvirt's own schema (virt-xml-validate); bad and hostile files are refused by name.
#include <catch2/catch.hpp>

#include "base/env.h"
#include "base/subprocess.h"
#include "guest/vm_config.h"
#include "test/test_util.h"

using namespace lm;

namespace {

const char* kVmx = R"(.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "14"
displayName = "web01 |22prod|22"
guestOS = "other5xlinux-64"
memSize = "2048"
numvcpus = "2"
firmware = "efi"
uuid.bios = "56 4d 8a 21 0b 3c 4d 5e-6f 70 81 92 a3 b4 c5 d6"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web01.vmdk"
scsi0:1.present = "TRUE"
scsi0:1.fileName = "web01_1.vmdk"
sata0.present = "TRUE"
sata0:0.present = "TRUE"
sata0:0.deviceType = "cdrom-image"
sata0:0.fileName = "/vmfs/volumes/iso/debian.iso"
ide1:0.present = "TRUE"
ide1:0.deviceType = "atapi-cdrom"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0C:29:AA:BB:CC"
ethernet1.present = "TRUE"
ethernet1.virtualDev = "e1000e"
ethernet1.addressType = "static"
ethernet1.address = "00:50:56:01:02:03"
ethernet1.networkName = "backup"
floppy0.present = "FALSE"
)";

const char* kDomain = R"(<domain type='kvm'>
  <name>db01</name>
  <uuid>0f1e2d3c4b5a69788796a5b4c3d2e1f0</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>4</vcpu>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/db01.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/db01-data.raw'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <graphics type='vnc' port='-1'/>
  </devices>
</domain>
)";

// libvirt's schema, as `virsh define` would check it.
void CheckValid(const std::string& xml) {
  test::TempDir dir;
  std::string path = dir / "domain.xml";
  REQUIRE(Env::Default()->WriteFileAtomic(path, xml).ok());
  std::string err;
  int rc = RunCommand({"virt-xml-validate", path, "domain"}, &err);
  INFO(xml);
  INFO(err);
  CHECK(rc == 0);
}

}  // namespace

TEST_CASE("vmx: every field is read", "[vm_config]") {
  auto c = ParseVmx(kVmx, "web01.vmx");
  REQUIRE(c.ok());
  CHECK(c->name == "web01 \"prod\"");
  CHECK(c->guest_os == "other5xlinux-64");
  CHECK(c->memory_mib == 2048);
  CHECK(c->vcpus == 2);
  CHECK(c->firmware == Firmware::kUefi);
  CHECK(c->uuid == "564d8a21-0b3c-4d5e-6f70-8192a3b4c5d6");
  REQUIRE(c->controllers.size() == 2);
  CHECK(c->controllers[0].bus == DiskBus::kScsi);
  CHECK(c->controllers[0].model == "pvscsi");
  CHECK(c->controllers[1].bus == DiskBus::kSata);
  REQUIRE(c->disks.size() == 3);  // the host CD drive (ide1:0) is not a file of the VM
  CHECK(c->disks[0].file == "web01.vmdk");
  CHECK(c->disks[0].format == "vmdk");
  CHECK(c->disks[1].unit == 1);
  CHECK(c->disks[2].bus == DiskBus::kSata);
  CHECK(c->disks[2].cdrom);
  REQUIRE(c->nics.size() == 2);
  CHECK(c->nics[0].model == "vmxnet3");
  CHECK(c->nics[0].mac == "00:0c:29:aa:bb:cc");
  CHECK(c->nics[0].network == "VM Network");
  CHECK(c->nics[1].model == "e1000e");
  CHECK(c->nics[1].mac == "00:50:56:01:02:03");
}

TEST_CASE("vmx to libvirt and back keeps the VM", "[vm_config]") {
  auto c = ParseVmx(kVmx, "web01.vmx");
  REQUIRE(c.ok());
  std::string xml = FormatLibvirtXml(*c, "/srv/livemount/web01/latest", "qemu");
  CheckValid(xml);
  CHECK(xml.find("<os firmware='efi'>") != std::string::npos);
  CHECK(xml.find("model='vmpvscsi'") != std::string::npos);
  // scsi0:1 is SCSI id 1 (PVSCSI has no LUNs; QEMU refuses lun 1 on it).
  CHECK(xml.find("<address type='drive' controller='0' bus='0' target='1' unit='0'/>") != std::string::npos);
  auto back = ParseLibvirtXml(xml, "web01.xml");
  REQUIRE(back.ok());
  CHECK(back->name == c->name);
  CHECK(back->uuid == c->uuid);
  CHECK(back->memory_mib == 2048);
  CHECK(back->vcpus == 2);
  CHECK(back->firmware == Firmware::kUefi);
  CHECK(back->guest_os == "other5xlinux-64");
  REQUIRE(back->disks.size() == 3);
  for (size_t i = 0; i < 3; i++) {
    std::string want = c->disks[i].file[0] == '/' ? c->disks[i].file : "/srv/livemount/web01/latest/" + c->disks[i].file;
    CHECK(back->disks[i].file == want);
    CHECK(back->disks[i].bus == c->disks[i].bus);
    CHECK(back->disks[i].controller == c->disks[i].controller);
    CHECK(back->disks[i].unit == c->disks[i].unit);
    CHECK(back->disks[i].cdrom == c->disks[i].cdrom);
  }
  REQUIRE(back->nics.size() == 2);
  CHECK(back->nics[1].mac == "00:50:56:01:02:03");
  CHECK(back->nics[0].network == "VM Network");
  // ... and into a .vmx again, the same as the first.
  auto again = ParseVmx(FormatVmx(*back), "again.vmx");
  REQUIRE(again.ok());
  CHECK(again->name == c->name);
  CHECK(again->uuid == c->uuid);
  CHECK(again->disks.size() == 3);
  CHECK(again->nics[0].model == "vmxnet3");
  CHECK(again->controllers[0].model == "pvscsi");
}

TEST_CASE("libvirt to vmx: virtio becomes paravirtual SCSI and vmxnet3", "[vm_config]") {
  auto c = ParseLibvirtXml(kDomain, "db01.xml");
  REQUIRE(c.ok());
  CHECK(c->memory_mib == 1024);
  CHECK(c->vcpus == 4);
  CHECK(c->firmware == Firmware::kUefi);
  CHECK(c->uuid == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  REQUIRE(c->disks.size() == 2);
  CHECK(c->disks[1].unit == 1);
  CheckValid(FormatLibvirtXml(*c, "/ignored"));
  std::string vmx = FormatVmx(*c);
  auto v = ParseVmx(vmx, "db01.vmx");
  REQUIRE(v.ok());
  INFO(vmx);
  CHECK(v->name == "db01");
  CHECK(v->memory_mib == 1024);
  CHECK(v->firmware == Firmware::kUefi);
  CHECK(v->guest_os == "other-64");
  REQUIRE(v->controllers.size() == 1);
  CHECK(v->controllers[0].model == "pvscsi");
  REQUIRE(v->disks.size() == 2);
  CHECK(v->disks[0].bus == DiskBus::kScsi);
  CHECK(v->disks[0].file == "/var/lib/libvirt/images/db01.qcow2");
  CHECK(v->disks[1].unit == 1);
  REQUIRE(v->nics.size() == 1);
  CHECK(v->nics[0].model == "vmxnet3");
  CHECK(v->nics[0].mac == "52:54:00:12:34:56");
}

TEST_CASE("BIOS, IDE, no NIC network, many disks: still a valid domain", "[vm_config]") {
  VmConfig c;
  c.name = "old & <odd>";
  c.memory_mib = 512;
  for (int i = 0; i < 4; i++) c.disks.push_back({"ide" + std::to_string(i) + ".vmdk", "vmdk", DiskBus::kIde, i / 2, i % 2});
  for (int i = 0; i < 30; i++) c.disks.push_back({"d" + std::to_string(i) + ".raw", "raw", DiskBus::kVirtio, 0, i});
  c.nics.push_back({"e1000", "", ""});
  std::string xml = FormatLibvirtXml(c, "/srv/vm dir/old");
  CheckValid(xml);
  auto back = ParseLibvirtXml(xml, "old.xml");
  REQUIRE(back.ok());
  CHECK(back->name == "old & <odd>");
  CHECK(back->firmware == Firmware::kBios);
  REQUIRE(back->disks.size() == 34);
  CHECK(back->disks[3].controller == 1);
  CHECK(back->disks[3].unit == 1);
  // The .vmx puts 30 virtio disks on SCSI, skipping unit 7 (the controller's own).
  auto v = ParseVmx(FormatVmx(c), "old.vmx");
  REQUIRE(v.ok());
  for (const VmDisk& d : v->disks) {
    if (d.bus == DiskBus::kScsi) CHECK(d.unit != 7);
  }
  CHECK(v->disks.size() == 34);
}

TEST_CASE("bad and hostile configurations are refused by name", "[vm_config]") {
  for (const char* bad : {
           "memSize = \"1024\"\n",                                        // no displayName
           "displayName = \"x\"\n",                                       // no memSize
           "displayName = \"x\"\nmemSize = 1024\n",                       // not quoted
           "displayName = \"x\"\nmemSize = \"99999999999\"\n",            // out of range
           "displayName = \"x\"\nmemSize = \"64\"\nfirmware = \"coreboot\"\n",
           "displayName = \"x\"\nmemSize = \"64\"\nscsi0.present = \"TRUE\"\nscsi0.virtualDev = \"weird\"\n",
           "displayName = \"x\"\nmemSize = \"64\"\nscsi9:0.present = \"TRUE\"\nscsi9:0.fileName = \"a.vmdk\"\n",
           "displayName = \"x\"\nmemSize = \"64\"\nethernet0.present = \"TRUE\"\nethernet0.addressType = \"static\"\n"
           "ethernet0.address = \"not-a-mac\"\n",
           "displayName = \"x\"\nmemSize = \"64\"\nscsi0:0.present = \"TRUE\"\n",  // a disk without a file
       }) {
    INFO(bad);
    auto c = ParseVmx(bad, "/vms/x/x.vmx");
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().find("/vms/x/x.vmx") != std::string::npos);
  }
  for (const char* bad : {
           "<domain><name>x</name>",  // not well-formed
           "<vm/>",
           "<domain><name>x</name></domain>",  // no memory
           "<domain><name>x</name><memory unit='parsecs'>1</memory></domain>",
           "<domain><name>x</name><memory>1048576</memory><uuid>zz</uuid></domain>",
           "<domain><name>x</name><memory>1048576</memory><devices><disk device='disk'><source "
           "file='a'/><target dev='sda' bus='usb'/></disk></devices></domain>",
       }) {
    INFO(bad);
    auto c = ParseLibvirtXml(bad, "/vms/x/x.xml");
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().find("/vms/x/x.xml") != std::string::npos);
  }
  // An external entity is never read: the name stays what the file says.
  auto c = ParseLibvirtXml("<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
                           "<domain><name>a&x;</name><memory>1048576</memory></domain>",
                           "x.xml");
  REQUIRE(c.ok());
  CHECK(c->name == "a");
}
