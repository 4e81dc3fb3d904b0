// ExportSupervisor: the NFS export of one mount over its lifetime. At most one export runs;
// starting takes seconds (ganesha), so the lock is not held meanwhile and `stats` stays
// quick; a second start while one starts or runs is Busy. Stopped before the mount ends
// (ganesha holds the mount's files open).
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "agent/control_protocol.h"
#include "agent/nfs_export.h"

namespace lm {

class ExportSupervisor {
 public:
  ~ExportSupervisor() { Stop(); }
  // Starts the export with complete options (CompleteExportOptions).
  Status Start(const ExportOptions& options);
  // Stops the export if one runs; says whether one was running.
  bool Stop();
  // The running (or exited) export, if any.
  std::optional<control::ExportInfo> Describe() const;

 private:
  mutable std::mutex mu_;
  std::unique_ptr<NfsExport> nfs_;
  bool starting_ = false;
};

}  // namespace lm
