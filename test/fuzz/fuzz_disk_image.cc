// libFuzzer target: disk-image formats (qcow2, VMDK sparse and stream) and partition
// tables (MBR/EBR, GPT) parsed from arbitrary bytes: errors are fine, crashes, hangs and
// huge allocations are not.
#include <cstring>
#include <string>

#include "guest/disk_image.h"
#include "guest/partitions.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string file(reinterpret_cast<const char*>(data), size);
  auto reader = [&](uint64_t off, size_t len, char* out) -> lm::Status {
    if (off > file.size() || len > file.size() - off) return lm::Status::Corrupt("read past the end");
    std::memcpy(out, file.data() + off, len);
    return lm::Status::Ok();
  };
  auto img = lm::DiskImage::Open(reader, file.size(), "fuzz");
  if (!img.ok()) return 0;
  uint64_t probe = std::min<uint64_t>(img->guest_size(), 1 << 20);
  (void)img->Map(0, probe);
  (void)img->MetadataFor(0, probe);
  std::string buf(std::min<uint64_t>(probe, 64 << 10), '\0');
  (void)img->ReadGuest(0, buf.size(), buf.data());
  (void)lm::ReadPartitions(*img, "fuzz");
  return 0;
}
