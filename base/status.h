// Status and Result<T>: how every fallible operation in livemount reports failure.
// A Status carries a code (for errno mapping in fs/) and a one-line message that names
// the file and what is wrong; exceptions never cross a layer boundary.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace lm {

enum class Code {
  kOk = 0,
  kNotFound,       // no such file, VM, backup or chunk
  kCorrupt,        // bytes on disk fail a magic, checksum or digest check
  kIoError,        // the OS refused a read or write
  kInvalid,        // bad argument or option
  kExists,         // refuses to overwrite
  kBusy,           // locked or in use
  kUnsupported,
  kNoSpace,
  // Namespace errors of the writable overlay (mapped to errno in fs/errno_map.h).
  kReadOnly,     // EROFS
  kNotEmpty,     // ENOTEMPTY
  kNotDir,       // ENOTDIR
  kIsDir,        // EISDIR
  kCrossDevice,  // EXDEV
  kNameTooLong,  // ENAMETOOLONG
  kNoAttribute,  // ENODATA: no such extended attribute
  kTooBig,       // E2BIG: an extended attribute value over the limit
  kRange,        // ERANGE: a buffer too small, a name over the limit
  kDenied,       // EACCES: a wrong password; no key of the repository opens with it
  kLastCode = kDenied,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status Corrupt(std::string m) { return Status(Code::kCorrupt, std::move(m)); }
  static Status IoError(std::string m) { return Status(Code::kIoError, std::move(m)); }
  static Status Invalid(std::string m) { return Status(Code::kInvalid, std::move(m)); }
  static Status Exists(std::string m) { return Status(Code::kExists, std::move(m)); }
  static Status Busy(std::string m) { return Status(Code::kBusy, std::move(m)); }
  static Status Unsupported(std::string m) { return Status(Code::kUnsupported, std::move(m)); }
  static Status NoSpace(std::string m) { return Status(Code::kNoSpace, std::move(m)); }
  static Status Denied(std::string m) { return Status(Code::kDenied, std::move(m)); }
  static Status Of(Code c, std::string m) { return Status(c, std::move(m)); }
  // An I/O error from errno: ENOENT becomes NotFound, ENOSPC NoSpace, the rest IoError.
  static Status FromErrno(int err, const std::string& what);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const { return ok() ? "ok" : message_; }
  // Prefixes context, e.g. "backup vm1: " + "read disk.raw: ...".
  Status Context(const std::string& prefix) const {
    return ok() ? *this : Status(code_, prefix + ": " + message_);
  }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status s) : v_(std::move(s)) { assert(!std::get<Status>(v_).ok()); }
  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace lm

#define LM_CONCAT_INNER(a, b) a##b
#define LM_CONCAT(a, b) LM_CONCAT_INNER(a, b)
// Returns the status from the enclosing function if it is not ok.
#define LM_RETURN_IF_ERROR(expr)         \
  do {                                   \
    ::lm::Status lm_st_ = (expr);        \
    if (!lm_st_.ok()) return lm_st_;     \
  } while (0)
// `LM_ASSIGN_OR_RETURN(auto x, Foo());` binds the value or returns the error.
#define LM_ASSIGN_OR_RETURN(lhs, expr) LM_ASSIGN_OR_RETURN_IMPL(LM_CONCAT(lm_r_, __LINE__), lhs, expr)
#define LM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()
