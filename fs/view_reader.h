// ViewReader: the bytes of one cross-hypervisor view of a backup copy (guest/copy_views.h),
// read through the backed-up files' own read path: a raw view of a qcow2 reads the qcow2's
// clusters as the image file's reads (cache, repository, first-touch traces), so a profile
// learned while a guest ran from the view pre-stages the same chunks as one learned from the
// image. The image is opened (its tables read) on the first read, not when listed.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "base/range_reader.h"
#include "guest/copy_views.h"
#include "guest/disk_image.h"

namespace lm {

// A backed-up file of the copy, by path: its reader and size.
struct CopyFile {
  RangeReader read;
  uint64_t size = 0;
};
using CopyFileOpener = std::function<Result<CopyFile>(const std::string& path)>;

class ViewReader {
 public:
  ViewReader(CopyView view, std::string what, CopyFileOpener open);
  const CopyView& view() const { return view_; }
  const std::string& name() const { return view_.name; }
  uint64_t size() const { return view_.size; }
  // [off, off+len) within size(); a damaged image is an error, never zeros.
  Status Read(uint64_t off, size_t len, char* out);

 private:
  Status ReadExtents(uint64_t off, size_t len, char* out);
  Result<const DiskImage*> Image();
  CopyView view_;
  std::string what_;  // "vm@id:name" for errors
  CopyFileOpener open_;
  std::mutex mu_;
  std::unique_ptr<DiskImage> image_;  // kDecoded, once opened
  std::vector<CopyFile> extent_files_;  // kExtents, by extent, once opened
};

}  // namespace lm
