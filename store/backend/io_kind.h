// Why a repository read happens, so an object store can queue and count it by kind: a
// guest waiting on a read comes first, then the pre-stager, then hydration, then the rest
// (backup, verify, maintenance). The kind is the calling thread's, set for a scope.
#pragma once

namespace lm {

enum class IoKind { kGuest = 0, kPrestage = 1, kHydrate = 2, kOther = 3 };
constexpr int kIoKinds = 4;

inline const char* IoKindName(IoKind k) {
  switch (k) {
    case IoKind::kGuest: return "guest";
    case IoKind::kPrestage: return "prestage";
    case IoKind::kHydrate: return "hydrate";
    default: return "other";
  }
}

inline IoKind& CurrentIoKindRef() {
  thread_local IoKind kind = IoKind::kOther;
  return kind;
}
inline IoKind CurrentIoKind() { return CurrentIoKindRef(); }

class ScopedIoKind {
 public:
  explicit ScopedIoKind(IoKind k) : saved_(CurrentIoKindRef()) { CurrentIoKindRef() = k; }
  ~ScopedIoKind() { CurrentIoKindRef() = saved_; }
  ScopedIoKind(const ScopedIoKind&) = delete;
  ScopedIoKind& operator=(const ScopedIoKind&) = delete;

 private:
  IoKind saved_;
};

}  // namespace lm
