// libFuzzer target: livemount's guest-filesystem layer (ext2/3/4 through libext2fs, NTFS
// through libntfs-3g) on an arbitrary partition: open, list the root, stat and map what
// is there. The seeds are real small filesystems (see run_fuzz.sh).
#include <cstring>
#include <string>

#include "guest/disk_image.h"
#include "guest/filesystem.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string file(reinterpret_cast<const char*>(data), size);
  auto reader = [&](uint64_t off, size_t len, char* out) -> lm::Status {
    if (off > file.size() || len > file.size() - off) return lm::Status::Corrupt("read past the end");
    std::memcpy(out, file.data() + off, len);
    return lm::Status::Ok();
  };
  auto img = lm::DiskImage::Open(reader, file.size(), "fuzz");
  if (!img.ok()) return 0;
  lm::Partition whole{0, 0, img->guest_size(), "none", "", "", false};
  lm::GuestDevice dev(*img, whole, "fuzz");
  auto fs = lm::OpenGuestFs(dev);
  if (!fs.ok()) return 0;
  auto list = (*fs)->List("/");
  if (!list.ok()) return 0;
  int n = 0;
  for (auto& e : *list) {
    if (++n > 16) break;
    (void)(*fs)->Stat("/" + e.name);
    (void)(*fs)->DataRanges("/" + e.name);
  }
  return 0;
}
