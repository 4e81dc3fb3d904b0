// The one place where a Status becomes an errno (fs/ alone speaks errno).
#pragma once

#include <cerrno>

#include "base/status.h"

namespace lm {

inline int ToErrno(const Status& s) {
  switch (s.code()) {
    case Code::kOk: return 0;
    case Code::kNotFound: return ENOENT;
    case Code::kCorrupt: return EIO;  // damaged data: never zeros, never wrong bytes
    case Code::kIoError: return EIO;
    case Code::kInvalid: return EINVAL;
    case Code::kExists: return EEXIST;
    case Code::kBusy: return EBUSY;
    case Code::kUnsupported: return ENOTSUP;
    case Code::kNoSpace: return ENOSPC;
    case Code::kReadOnly: return EROFS;
    case Code::kNotEmpty: return ENOTEMPTY;
    case Code::kNotDir: return ENOTDIR;
    case Code::kIsDir: return EISDIR;
    case Code::kCrossDevice: return EXDEV;
    case Code::kNameTooLong: return ENAMETOOLONG;
    case Code::kNoAttribute: return ENODATA;
    case Code::kTooBig: return E2BIG;
    case Code::kRange: return ERANGE;
    case Code::kDenied: return EACCES;
  }
  return EIO;
}

}  // namespace lm
