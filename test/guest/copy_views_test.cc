// Cross-hypervisor views (guest/copy_views.h) and VMDK descriptors (guest/vmdk_descriptor.h):
// which views a VMware and a KVM copy get, what they are made of, that a name already taken
// or a disk that cannot be viewed gets none (with a note), and that a hostile descriptor
// never reaches outside the copy.
#include <catch2/catch.hpp>

#include <map>

#include "guest/copy_views.h"
#include "guest/vmdk_descriptor.h"

using namespace lm;

namespace {

struct FakeCopy {
  std::vector<FileEntry> files;
  std::map<std::string, std::string> bytes;  // small files and headers; the rest reads as zeros
  void Add(const std::string& path, uint64_t size, std::string head = "") {
    FileEntry f;
    f.path = path;
    f.size = size;
    f.mode = 0644;
    files.push_back(f);
    bytes[path] = std::move(head);
  }
  CopyFileReader Reader() {
    return [this](const std::string& path, uint64_t off, size_t len) -> Result<std::string> {
      std::string b = bytes.at(path);
      b.resize(std::max<size_t>(b.size(), off + len), '\0');
      return b.substr(off, len);
    };
  }
};

std::string Qcow2Header(uint64_t size, uint64_t backing = 0) {
  std::string h(112, '\0');
  h.replace(0, 4, "QFI\xfb");
  h[7] = 3;
  for (int i = 0; i < 8; i++) h[8 + i] = static_cast<char>(backing >> (56 - 8 * i));
  for (int i = 0; i < 8; i++) h[24 + i] = static_cast<char>(size >> (56 - 8 * i));
  return h;
}

const CopyView* Find(const std::vector<CopyView>& v, const std::string& name) {
  for (auto& x : v) {
    if (x.name == name) return &x;
  }
  return nullptr;
}

const char* kVmx = R"(.encoding = "UTF-8"
displayName = "web01"
guestOS = "other5xlinux-64"
memSize = "1024"
numvcpus = "2"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web01.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.addressType = "static"
ethernet0.address = "00:50:56:01:02:03"
)";

std::string Descriptor(const std::string& extents, const std::string& parent = "ffffffff") {
  std::string d = "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=" + parent +
                  "\ncreateType=\"monolithicFlat\"\n\n# Extent description\n" + extents +
                  "\n# The Disk Data Base\n#DDB\nddb.adapterType = \"lsilogic\"\n";
  d.resize(1024, '\0');  // padded to whole sectors, as qemu-img and ESXi write it
  return d;
}

FakeCopy VmwareCopy() {
  FakeCopy c;
  c.Add("web01.vmx", std::string(kVmx).size(), kVmx);
  std::string d = Descriptor("RW 2048 FLAT \"web01-flat.vmdk\" 0\nRW 1024 ZERO\nRW 2048 FLAT \"web01-flat.vmdk\" 2048\n");
  c.Add("web01.vmdk", d.size(), d);
  c.Add("web01-flat.vmdk", 4096 * 512);
  c.Add("web01.nvram", 8684);
  return c;
}

const char* kDomain = R"(<domain type='kvm'>
  <name>db01</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/db01.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/libvirt/images/db01-data.img'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>
)";

FakeCopy KvmCopy() {
  FakeCopy c;
  c.Add("db01.xml", std::string(kDomain).size(), kDomain);
  c.Add("db01.qcow2", 1 << 20, Qcow2Header(uint64_t{8} << 30));
  c.Add("db01-data.img", 64 << 20);
  return c;
}

}  // namespace

TEST_CASE("a VMware copy gets raw views of its VMDKs and a libvirt domain over them", "[copy_views]") {
  FakeCopy c = VmwareCopy();
  std::vector<std::string> notes;
  auto views = PlanCopyViews(c.files, c.Reader(), {"/mnt/lm/web01/20261127T0800Z", "qemu"}, &notes);
  INFO((notes.empty() ? "" : notes[0]));
  REQUIRE(views.size() == 2);
  const CopyView* raw = Find(views, "web01.raw");
  REQUIRE(raw);
  CHECK(raw->kind == ViewKind::kExtents);
  CHECK(raw->source == "web01.vmdk");
  CHECK(raw->size == 5120 * 512);
  REQUIRE(raw->extents.size() == 3);
  CHECK(raw->extents[0].file == "web01-flat.vmdk");
  CHECK(raw->extents[0].file_off == 0);
  CHECK(raw->extents[1].file.empty());  // ZERO
  CHECK(raw->extents[1].len == 1024 * 512);
  CHECK(raw->extents[2].file_off == 2048 * 512);
  const CopyView* xml = Find(views, "web01.livemount.xml");
  REQUIRE(xml);
  CHECK(xml->size == xml->text.size());
  CHECK(xml->text.find("<domain type='qemu'>") != std::string::npos);
  CHECK(xml->text.find("<source file='/mnt/lm/web01/20261127T0800Z/web01.raw'/>") != std::string::npos);
  CHECK(xml->text.find("<driver name='qemu' type='raw'/>") != std::string::npos);
  CHECK(xml->text.find("vmxnet3") != std::string::npos);
  auto back = ParseLibvirtXml(xml->text, "web01.livemount.xml");
  REQUIRE(back.ok());
  CHECK(back->memory_mib == 1024);
  CHECK(back->vcpus == 2);
  CHECK(back->nics.at(0).mac == "00:50:56:01:02:03");

  SECTION("no mount path: no domain (libvirt needs absolute paths)") {
    auto v = PlanCopyViews(c.files, c.Reader(), {}, &notes);
    CHECK(Find(v, "web01.raw"));
    CHECK_FALSE(Find(v, "web01.livemount.xml"));
  }
  SECTION("as libvirt runs it: the raw views; as VMware does: the VMDKs") {
    auto lv = CopyVmConfig(c.files, c.Reader(), "libvirt", "web01");
    REQUIRE(lv.ok());
    REQUIRE(lv->disks.size() == 1);
    CHECK(lv->disks[0].file == "web01.raw");
    CHECK(lv->disks[0].format == "raw");
    auto vm = CopyVmConfig(c.files, c.Reader(), "vmware", "web01");
    REQUIRE(vm.ok());
    CHECK(vm->disks.at(0).file == "web01.vmdk");
    CHECK(vm->disks.at(0).format == "vmdk");
  }
}

TEST_CASE("a KVM copy gets raw views, VMDK descriptors over them and a .vmx", "[copy_views]") {
  FakeCopy c = KvmCopy();
  std::vector<std::string> notes;
  auto views = PlanCopyViews(c.files, c.Reader(), {"/mnt/lm/db01/x", "kvm"}, &notes);
  const CopyView* raw = Find(views, "db01.raw");
  REQUIRE(raw);
  CHECK(raw->kind == ViewKind::kDecoded);
  CHECK(raw->size == uint64_t{8} << 30);
  CHECK(raw->source == "db01.qcow2");
  const CopyView* desc = Find(views, "db01.vmdk");
  REQUIRE(desc);
  auto d = ParseVmdkDescriptor(desc->text, "db01.vmdk");
  REQUIRE(d.ok());
  CHECK(d->create_type == "monolithicFlat");
  CHECK_FALSE(d->has_parent);
  REQUIRE(d->extents.size() == 1);
  CHECK(d->extents[0].type == "FLAT");
  CHECK(d->extents[0].file == "db01.raw");
  CHECK(d->extents[0].sectors == (uint64_t{8} << 30) / 512);
  // The raw data disk needs no decoding: its descriptor names the backed-up file itself.
  const CopyView* data_desc = Find(views, "db01-data.vmdk");
  REQUIRE(data_desc);
  CHECK(data_desc->text.find("FLAT \"db01-data.img\" 0") != std::string::npos);
  CHECK_FALSE(Find(views, "db01-data.raw"));
  const CopyView* vmx = Find(views, "db01.vmx");
  REQUIRE(vmx);
  auto parsed = ParseVmx(vmx->text, "db01.vmx");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->disks.size() == 2);
  CHECK(parsed->disks[0].file == "db01.vmdk");
  CHECK(parsed->disks[1].file == "db01-data.vmdk");
  CHECK(parsed->memory_mib == 512);

  auto lv = CopyVmConfig(c.files, c.Reader(), "libvirt", "db01");
  REQUIRE(lv.ok());
  CHECK(lv->disks.at(0).file == "db01.qcow2");
  CHECK(lv->disks.at(0).format == "qcow2");
  CHECK(lv->disks.at(1).file == "db01-data.img");
  CHECK(lv->disks.at(1).format == "raw");
}

TEST_CASE("a view never hides a backed-up file", "[copy_views]") {
  FakeCopy c = KvmCopy();
  c.Add("db01.raw", 10, "mine");
  c.Add("db01.vmx", 10, "mine");
  auto views = PlanCopyViews(c.files, c.Reader(), {"/m/db01/x", "kvm"}, nullptr);
  for (const CopyView& v : views) {
    CHECK(v.name != "db01.raw");
    CHECK(v.name != "db01.vmx");
  }
  CHECK_FALSE(Find(views, "db01.vmdk"));  // its extent would have been the raw view
}

TEST_CASE("disks that cannot be viewed get a note and no view", "[copy_views]") {
  std::vector<std::string> notes;
  SECTION("a qcow2 with a backing file") {
    FakeCopy c;
    c.Add("a.qcow2", 1 << 20, Qcow2Header(1 << 30, 4096));
    CHECK(PlanCopyViews(c.files, c.Reader(), {}, &notes).empty());
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("backing file") != std::string::npos);
  }
  SECTION("a snapshot's delta") {
    FakeCopy c;
    std::string d = Descriptor("RW 2048 FLAT \"a-flat.vmdk\" 0\n", "fffffffe");
    c.Add("a.vmdk", d.size(), d);
    c.Add("a-flat.vmdk", 2048 * 512);
    CHECK(PlanCopyViews(c.files, c.Reader(), {}, &notes).empty());
    CHECK(notes.at(0).find("delta") != std::string::npos);
  }
  SECTION("an extent outside the copy, or beyond its file") {
    FakeCopy c;
    std::string up = Descriptor("RW 2048 FLAT \"../../etc/shadow\" 0\n");
    c.Add("a.vmdk", up.size(), up);
    std::string abs = Descriptor("RW 2048 FLAT \"/etc/shadow\" 0\n");
    c.Add("b.vmdk", abs.size(), abs);
    std::string longer = Descriptor("RW 4096 FLAT \"c-flat.vmdk\" 0\n");
    c.Add("c.vmdk", longer.size(), longer);
    c.Add("c-flat.vmdk", 2048 * 512);
    CHECK(PlanCopyViews(c.files, c.Reader(), {}, &notes).empty());
    CHECK(notes.size() == 3);
  }
  SECTION("sparse extents of a split disk") {
    FakeCopy c;
    std::string d = Descriptor("RW 2048 SPARSE \"a-s001.vmdk\"\n");
    c.Add("a.vmdk", d.size(), d);
    CHECK(PlanCopyViews(c.files, c.Reader(), {}, &notes).empty());
    CHECK(notes.at(0).find("SPARSE") != std::string::npos);
  }
}

TEST_CASE("VMDK descriptors: parsed strictly, written as QEMU and ESXi read them", "[copy_views]") {
  auto ok = ParseVmdkDescriptor(Descriptor("RW 100 FLAT \"my disk-flat.vmdk\" 7\nRDONLY 50 ZERO\n"), "d.vmdk");
  REQUIRE(ok.ok());
  REQUIRE(ok->extents.size() == 2);
  CHECK(ok->extents[0].file == "my disk-flat.vmdk");
  CHECK(ok->extents[0].offset == 7);
  CHECK(ok->extents[1].type == "ZERO");
  CHECK(ok->sectors() == 150);
  CHECK(ok->adapter_type == "lsilogic");

  std::string garbage_after_padding = Descriptor("RW 100 FLAT \"a\" 0\n");
  garbage_after_padding.back() = 'x';
  CHECK_FALSE(ParseVmdkDescriptor(garbage_after_padding, "d.vmdk").ok());
  auto bad = ParseVmdkDescriptor("createType=\"monolithicFlat\"\nRW x FLAT \"a\" 0\n", "d.vmdk");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("d.vmdk: line 2") != std::string::npos);
  CHECK_FALSE(ParseVmdkDescriptor("createType=\"monolithicFlat\"\n", "d.vmdk").ok());  // no extent
  CHECK_FALSE(ParseVmdkDescriptor("RW 99999999999999999 FLAT \"a\" 0\n", "d.vmdk").ok());
  CHECK_FALSE(ParseVmdkDescriptor(std::string(70000, '#'), "d.vmdk").ok());

  std::string made = FormatVmdkDescriptor(2097152, "disk.raw", "lsilogic", 0xabcdef01);
  auto back = ParseVmdkDescriptor(made, "made.vmdk");
  REQUIRE(back.ok());
  CHECK(back->create_type == "monolithicFlat");
  CHECK(back->sectors() == 2097152);
  CHECK(made.find("CID=abcdef01") != std::string::npos);
  CHECK(made.find("ddb.geometry.heads = \"255\"") != std::string::npos);
}
