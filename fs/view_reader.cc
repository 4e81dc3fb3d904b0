#include "fs/view_reader.h"

#include <cstring>

namespace lm {

ViewReader::ViewReader(CopyView view, std::string what, CopyFileOpener open)
    : view_(std::move(view)), what_(std::move(what)), open_(std::move(open)) {}

Result<const DiskImage*> ViewReader::Image() {
  std::lock_guard lock(mu_);
  if (image_) return image_.get();
  LM_ASSIGN_OR_RETURN(CopyFile f, open_(view_.source));
  LM_ASSIGN_OR_RETURN(DiskImage img, DiskImage::Open(f.read, f.size, what_ + " (" + view_.source + ")"));
  if (img.guest_size() != view_.size) {
    return Status::Corrupt(what_ + ": " + view_.source + " changed its size between its header reads");
  }
  image_ = std::make_unique<DiskImage>(std::move(img));
  return image_.get();
}

Status ViewReader::ReadExtents(uint64_t off, size_t len, char* out) {
  {
    std::lock_guard lock(mu_);
    if (extent_files_.empty()) {
      std::vector<CopyFile> files;
      for (const ViewExtent& e : view_.extents) {
        if (e.file.empty()) {
          files.push_back({});
          continue;
        }
        LM_ASSIGN_OR_RETURN(CopyFile f, open_(e.file));
        if (e.file_off + e.len > f.size) return Status::Corrupt(what_ + ": extent " + e.file + " ends beyond the file");
        files.push_back(std::move(f));
      }
      extent_files_ = std::move(files);
    }
  }
  uint64_t start = 0;
  for (size_t i = 0; i < view_.extents.size() && len > 0; i++) {
    const ViewExtent& e = view_.extents[i];
    if (off < start + e.len) {
      uint64_t in = off - start;
      size_t n = static_cast<size_t>(std::min<uint64_t>(len, e.len - in));
      if (e.file.empty()) std::memset(out, 0, n);
      else LM_RETURN_IF_ERROR(extent_files_[i].read(e.file_off + in, n, out));
      off += n, out += n, len -= n;
    }
    start += e.len;
  }
  if (len) return Status::Corrupt(what_ + ": read beyond the view's extents");
  return Status::Ok();
}

Status ViewReader::Read(uint64_t off, size_t len, char* out) {
  if (off > view_.size || len > view_.size - off) return Status::Invalid(what_ + ": read beyond the end");
  switch (view_.kind) {
    case ViewKind::kText:
      std::memcpy(out, view_.text.data() + off, len);
      return Status::Ok();
    case ViewKind::kExtents:
      return ReadExtents(off, len, out);
    case ViewKind::kDecoded: {
      LM_ASSIGN_OR_RETURN(const DiskImage* img, Image());
      return img->ReadGuest(off, len, out);
    }
  }
  return Status::Invalid(what_ + ": unknown view");
}

}  // namespace lm
