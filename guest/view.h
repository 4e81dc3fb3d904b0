// The guest's view of a backup copy: its disks, their partitions and the files in them.
//
// Paths: "/" lists the volumes, named as Linux would name them (sda1, sda5, sdb2; "sda"
// for a filesystem made on a whole disk), disks lettered in the order of the backup's
// disk image files. "/sda1/etc/fstab" is a file inside the first partition.
//
// Resolve() turns a guest path into the byte ranges of the backed-up image file that a
// reader needs to reach and read it: the image format's own metadata for those ranges
// (qcow2 header, L1 and L2 tables; VMDK header, grain directory and tables), the partition
// table, everything the filesystem read to open itself and to walk to the file and map
// its blocks, and the file's data (a compressed cluster or grain as a whole). Reading only
// those ranges of the image through the same stack gives the file's bytes exactly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "guest/filesystem.h"
#include "store/repository.h"

namespace lm {

struct GuestVolume {
  std::string name;       // "sda1"
  std::string disk_file;  // the image file in the backup copy ("disk.qcow2")
  Partition part;
  std::string fs_type, label;
  std::string error;      // why it cannot be browsed, "" if it can
};

struct ResolvedFile {
  std::string guest_path;  // "/sda1/etc/fstab"
  std::string disk_file;
  uint64_t size = 0;       // the file's size in the guest
  uint64_t data_bytes = 0; // guest bytes of its data blocks
  RangeSet ranges;         // image-file ranges (data and metadata)
};

class GuestView {
 public:
  // Every disk image of a backup copy, read from the repository.
  static Result<std::unique_ptr<GuestView>> OpenBackup(Repository& repo, const BackupRef& b);
  // One disk image file on a local filesystem (or on a live mount).
  static Result<std::unique_ptr<GuestView>> OpenImage(Env* env, const std::string& path);
  // Every disk image of a VM directory, named as OpenBackup names them after a backup.
  static Result<std::unique_ptr<GuestView>> OpenDirectory(Env* env, const std::string& vmdir);
  ~GuestView();

  const std::vector<GuestVolume>& volumes() const { return volumes_; }
  Result<GuestEntry> Stat(const std::string& path);
  Result<std::vector<GuestEntry>> List(const std::string& path);
  Status Read(const std::string& path, uint64_t off, size_t len, std::string* out);
  // A file resolves to itself; a directory to every file below it.
  Result<std::vector<ResolvedFile>> Resolve(const std::string& path);

 private:
  struct Disk;
  struct Volume;
  GuestView() = default;
  Status AddDisk(std::unique_ptr<Disk> disk);
  Status AddLocalImage(Env* env, const std::string& path, const std::string& name);
  void AddBroken(const std::string& disk_file, const std::string& error);  // shown, not browsable
  // "/sda1/etc" -> (volume, "/etc"); NotFound for unknown volumes.
  Result<std::pair<Volume*, std::string>> Split(const std::string& path);
  Status ResolveInto(Volume& v, const std::string& inner, std::vector<ResolvedFile>* out, int depth);
  void AddGuestRanges(const Disk& d, const RangeSet& guest, RangeSet* host);

  std::string label_;  // "vm@id" or the image path, for errors
  std::vector<std::unique_ptr<Disk>> disks_;
  std::vector<std::unique_ptr<Volume>> vols_;
  std::vector<GuestVolume> volumes_;
};

// Parses "VM[@BACKUP]:/guest/path" into the spec and the path ("/" if none).
Status SplitGuestSpec(const std::string& arg, std::string* spec, std::string* path);

}  // namespace lm
