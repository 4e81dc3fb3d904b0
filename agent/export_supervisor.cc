#include "agent/export_supervisor.h"

namespace lm {

Status ExportSupervisor::Start(const ExportOptions& options) {
  {
    std::lock_guard lock(mu_);
    if (starting_ || (nfs_ && nfs_->running())) return Status::Busy(options.mountpoint + " is already exported");
    starting_ = true;
    nfs_.reset();
  }
  auto started = NfsExport::Start(options);
  std::lock_guard lock(mu_);
  starting_ = false;
  if (!started.ok()) return started.status();
  nfs_ = std::move(started).value();
  return Status::Ok();
}

bool ExportSupervisor::Stop() {
  std::unique_ptr<NfsExport> nfs;
  {
    std::lock_guard lock(mu_);
    nfs.swap(nfs_);
  }
  bool was = nfs && nfs->running();
  nfs.reset();  // stops ganesha (up to 10 s) without holding the lock
  return was;
}

std::optional<control::ExportInfo> ExportSupervisor::Describe() const {
  std::lock_guard lock(mu_);
  if (!nfs_) return std::nullopt;
  return nfs_->Describe();
}

}  // namespace lm
