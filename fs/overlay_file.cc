#include "fs/overlay_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "base/bytes.h"

namespace lm {

namespace {
constexpr uint32_t kJournalMagic = 0x4A4F4D4C;  // "LMOJ"
constexpr size_t kRecordSize = 32;
constexpr uint32_t kAdd = 1, kSize = 2;
constexpr uint64_t kCompactBytes = 4 << 20;

uint64_t BlocksFor(uint64_t size) { return (size + kOverlayBlock - 1) / kOverlayBlock; }
}  // namespace

Result<std::unique_ptr<OverlayFile>> OverlayFile::Open(Env* env, const std::string& dir, const std::string& id,
                                                       uint64_t base_size) {
  LM_RETURN_IF_ERROR(MkdirAll(dir));
  std::unique_ptr<OverlayFile> f(new OverlayFile());
  f->env_ = env;
  f->data_path_ = JoinPath(dir, id + ".data");
  f->journal_path_ = JoinPath(dir, id + ".journal");
  LM_ASSIGN_OR_RETURN(f->data_fd_, env->Open(f->data_path_, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  bool fresh = !PathExists(f->journal_path_);
  if (fresh) {
    f->size_ = f->base_limit_ = base_size;
    LM_RETURN_IF_ERROR(f->Compact());  // the initial state is durable before any write
  } else {
    LM_ASSIGN_OR_RETURN(f->journal_fd_, env->Open(f->journal_path_, O_RDWR));
    LM_RETURN_IF_ERROR(f->Replay());
    LM_RETURN_IF_ERROR(f->Compact());
  }
  return f;
}

void OverlayFile::Append(uint32_t type, uint64_t a, uint64_t b, std::string* out) const {
  size_t start = out->size();
  PutU32(out, kJournalMagic);
  PutU32(out, type);
  PutU64(out, a);
  PutU64(out, b);
  PutU32(out, 0);
  PutU32(out, static_cast<uint32_t>(XXH3_64bits(out->data() + start, 28)));
}

std::vector<std::pair<uint64_t, uint64_t>> OverlayFile::PresentRanges() const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (size_t w = 0; w < bits_.size(); w++) {
    if (bits_[w] == 0) continue;
    for (unsigned b = 0; b < 64; b++) {
      if (!(bits_[w] >> b & 1)) continue;
      uint64_t start = (w * 64 + b) * uint64_t{kOverlayBlock};
      if (!out.empty() && out.back().second == start) out.back().second += kOverlayBlock;
      else out.push_back({start, start + kOverlayBlock});
    }
  }
  return out;
}

bool OverlayFile::Present(uint64_t block) const {
  size_t w = block / 64;
  return w < bits_.size() && (bits_[w] >> (block % 64) & 1);
}

void OverlayFile::SetPresent(uint64_t block, bool on) {
  size_t w = block / 64;
  if (w >= bits_.size()) {
    if (!on) return;
    bits_.resize(w + 1, 0);
  }
  uint64_t mask = uint64_t{1} << (block % 64);
  bool was = bits_[w] & mask;
  if (on && !was) {
    bits_[w] |= mask;
    present_count_++;
  } else if (!on && was) {
    bits_[w] &= ~mask;
    present_count_--;
  }
}

Status OverlayFile::Replay() {
  LM_ASSIGN_OR_RETURN(std::string j, env_->ReadFile(journal_path_));
  size_t n = 0;
  for (; (n + 1) * kRecordSize <= j.size(); n++) {
    const char* r = j.data() + n * kRecordSize;
    if (GetU32(r) != kJournalMagic ||
        GetU32(r + 28) != static_cast<uint32_t>(XXH3_64bits(r, 28))) {
      break;  // a torn or damaged tail: everything before it was synced whole
    }
    uint32_t type = GetU32(r + 4);
    uint64_t a = GetU64(r + 8), b = GetU64(r + 16);
    if (type == kAdd && a <= b && b - a < (uint64_t{1} << 40)) {
      for (uint64_t blk = a; blk < b; blk++) SetPresent(blk, true);
    } else if (type == kSize) {
      size_ = a;
      base_limit_ = std::min(b, a);
      for (uint64_t blk = BlocksFor(size_); blk < bits_.size() * 64; blk++) SetPresent(blk, false);
    } else {
      break;
    }
  }
  if (n == 0) return Status::Corrupt(journal_path_ + ": no valid record");
  // Invariant: nothing is present at or past the end of the file.
  for (uint64_t blk = BlocksFor(size_); blk < bits_.size() * 64; blk++) SetPresent(blk, false);
  return Status::Ok();
}

Status OverlayFile::Compact() {
  std::string j;
  Append(kSize, size_, base_limit_, &j);
  uint64_t nblocks = bits_.size() * 64;
  for (uint64_t b = 0; b < nblocks;) {
    if (!Present(b)) {
      b++;
      continue;
    }
    uint64_t e = b;
    while (e < nblocks && Present(e)) e++;
    Append(kAdd, b, e, &j);
    b = e;
  }
  Env* env = env_;
  LM_RETURN_IF_ERROR(env->WriteFileAtomic(journal_path_, j));
  LM_ASSIGN_OR_RETURN(journal_fd_, env->Open(journal_path_, O_RDWR));
  journal_size_ = j.size();
  dirty_.clear();
  size_dirty_ = false;
  return Status::Ok();
}

uint64_t OverlayFile::size() const {
  std::lock_guard lock(mu_);
  return size_;
}

uint64_t OverlayFile::base_limit() const {
  std::lock_guard lock(mu_);
  return base_limit_;
}

bool OverlayFile::dirty() const {
  std::lock_guard lock(mu_);
  return !dirty_.empty() || size_dirty_;
}

uint64_t OverlayFile::present_blocks() const {
  std::lock_guard lock(mu_);
  return present_count_;
}

Status OverlayFile::ReadBlock(uint64_t b, char* buf, const RangeReader& base) {
  uint64_t start = b * kOverlayBlock;
  if (Present(b)) {
    return env_->PReadExact(data_fd_.get(), buf, kOverlayBlock, start, data_path_);
  }
  size_t from_base = start < base_limit_ ? std::min<uint64_t>(kOverlayBlock, base_limit_ - start) : 0;
  if (from_base) LM_RETURN_IF_ERROR(base(start, from_base, buf));
  std::memset(buf + from_base, 0, kOverlayBlock - from_base);
  return Status::Ok();
}

Status OverlayFile::Read(uint64_t off, size_t len, char* out, const RangeReader& base) {
  std::lock_guard lock(mu_);
  if (off + len > size_) return Status::Invalid(data_path_ + ": read past the end");
  uint64_t end = off + len;
  uint64_t pos = off;
  while (pos < end) {
    uint64_t b = pos / kOverlayBlock;
    bool present = Present(b);
    // A run of blocks with the same source, served by one read.
    uint64_t run_end = (b + 1) * kOverlayBlock;
    while (run_end < end && Present(run_end / kOverlayBlock) == present) run_end += kOverlayBlock;
    run_end = std::min(run_end, end);
    char* dst = out + (pos - off);
    size_t n = run_end - pos;
    if (present) {
      LM_RETURN_IF_ERROR(env_->PReadExact(data_fd_.get(), dst, n, pos, data_path_));
    } else {
      size_t from_base = pos < base_limit_ ? std::min<uint64_t>(n, base_limit_ - pos) : 0;
      if (from_base) LM_RETURN_IF_ERROR(base(pos, from_base, dst));
      std::memset(dst + from_base, 0, n - from_base);
    }
    pos = run_end;
  }
  return Status::Ok();
}

Status OverlayFile::CommitShrinkLocked() {
  // The smaller size durable first (a whole Sync: the data before the journal, as always),
  // so that no synced state shows the bytes the pending work destroys.
  return pending_.empty() ? Status::Ok() : SyncLocked();
}

Status OverlayFile::ApplyPendingLocked() {
  for (const Pending& p : pending_) {
    if (p.punch) {
      (void)env_->PunchHole(data_fd_.get(), p.off, p.len, data_path_);  // space only: not present
    } else {
      std::string zeros(p.len, '\0');
      LM_RETURN_IF_ERROR(env_->PWrite(data_fd_.get(), zeros.data(), zeros.size(), p.off, data_path_));
      dirty_.push_back(p.off / kOverlayBlock);
    }
  }
  pending_.clear();
  return Status::Ok();
}

Status OverlayFile::Write(uint64_t off, const char* data, size_t len, const RangeReader& base) {
  std::lock_guard lock(mu_);
  LM_RETURN_IF_ERROR(CommitShrinkLocked());
  Env* env = env_;
  uint64_t end = off + len;
  uint64_t pos = off;
  std::string block(kOverlayBlock, '\0');
  while (pos < end) {
    uint64_t b = pos / kOverlayBlock;
    uint64_t bstart = b * kOverlayBlock;
    if (pos == bstart && end - pos >= kOverlayBlock) {
      // Whole blocks: written as they are, the base is never read.
      uint64_t whole = (end - pos) / kOverlayBlock * kOverlayBlock;
      LM_RETURN_IF_ERROR(env->PWrite(data_fd_.get(), data + (pos - off), whole, pos, data_path_));
      for (uint64_t i = b; i < b + whole / kOverlayBlock; i++) {
        SetPresent(i, true);
        dirty_.push_back(i);
      }
      pos += whole;
      continue;
    }
    size_t in_block = pos - bstart;
    size_t n = std::min<uint64_t>(end - pos, kOverlayBlock - in_block);
    if (Present(b)) {
      LM_RETURN_IF_ERROR(env->PWrite(data_fd_.get(), data + (pos - off), n, pos, data_path_));
    } else {
      // A partial block: only this block of the base is read.
      LM_RETURN_IF_ERROR(ReadBlock(b, block.data(), base));
      std::memcpy(block.data() + in_block, data + (pos - off), n);
      LM_RETURN_IF_ERROR(env->PWrite(data_fd_.get(), block.data(), kOverlayBlock, bstart, data_path_));
      SetPresent(b, true);
    }
    dirty_.push_back(b);
    pos += n;
  }
  if (end > size_) {
    size_ = end;
    size_dirty_ = true;
  }
  return Status::Ok();
}

Status OverlayFile::Zero(uint64_t off, uint64_t len, const RangeReader& base) {
  uint64_t end;
  {
    std::lock_guard lock(mu_);
    end = std::min(off + len, size_);
  }
  if (off >= end) return Status::Ok();
  uint64_t first_whole = (off + kOverlayBlock - 1) / kOverlayBlock * kOverlayBlock;
  uint64_t last_whole = end / kOverlayBlock * kOverlayBlock;
  if (first_whole >= last_whole) {  // no whole block: plain zero writes
    std::string zeros(end - off, '\0');
    return Write(off, zeros.data(), zeros.size(), base);
  }
  if (off < first_whole) {
    std::string zeros(first_whole - off, '\0');
    LM_RETURN_IF_ERROR(Write(off, zeros.data(), zeros.size(), base));
  }
  if (last_whole < end) {
    std::string zeros(end - last_whole, '\0');
    LM_RETURN_IF_ERROR(Write(last_whole, zeros.data(), zeros.size(), base));
  }
  std::lock_guard lock(mu_);
  LM_RETURN_IF_ERROR(CommitShrinkLocked());
  struct stat st;
  if (::fstat(data_fd_.get(), &st) != 0) return Status::FromErrno(errno, data_path_);
  if (uint64_t(st.st_size) < last_whole) LM_RETURN_IF_ERROR(env_->Truncate(data_fd_.get(), last_whole, data_path_));
  LM_RETURN_IF_ERROR(env_->PunchHole(data_fd_.get(), first_whole, last_whole - first_whole, data_path_));
  for (uint64_t b = first_whole / kOverlayBlock; b < last_whole / kOverlayBlock; b++) {
    SetPresent(b, true);  // present and a hole: reads zeros, never the base
    dirty_.push_back(b);
  }
  return Status::Ok();
}

Status OverlayFile::Truncate(uint64_t size) {
  std::lock_guard lock(mu_);
  if (size > size_) LM_RETURN_IF_ERROR(CommitShrinkLocked());  // growing shows what follows
  if (size < size_) {
    base_limit_ = std::min(base_limit_, size);
    uint64_t keep = BlocksFor(size);
    uint64_t old_blocks = BlocksFor(size_);
    for (uint64_t b = keep; b < old_blocks; b++) SetPresent(b, false);
    // The delta still holds bytes that the last synced state shows. They are given back
    // (punched) and cleared (bytes past the new end must read as zeros if the file grows
    // again) only once the smaller size is durable: at the next Sync, or before the file
    // grows or is written (CommitShrinkLocked). A crash before leaves the old file whole.
    if (old_blocks > keep) pending_.push_back({true, keep * kOverlayBlock, (old_blocks - keep) * kOverlayBlock});
    uint64_t tail = size % kOverlayBlock;
    if (tail && Present(size / kOverlayBlock)) pending_.push_back({false, size, kOverlayBlock - tail});
  }
  size_ = size;
  size_dirty_ = true;
  return Status::Ok();
}

Status OverlayFile::Sync() {
  std::lock_guard lock(mu_);
  return SyncLocked();
}

Status OverlayFile::SyncLocked() {
  if (dirty_.empty() && !size_dirty_) return Status::Ok();
  Env* env = env_;
  LM_RETURN_IF_ERROR(env_->SyncData(data_fd_.get(), data_path_));
  std::sort(dirty_.begin(), dirty_.end());
  dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
  std::string j;
  Append(kSize, size_, base_limit_, &j);  // first: a torn tail never leaves blocks past the end
  for (size_t i = 0; i < dirty_.size();) {
    if (!Present(dirty_[i])) {
      i++;
      continue;
    }
    size_t k = i + 1;
    while (k < dirty_.size() && dirty_[k] == dirty_[k - 1] + 1 && Present(dirty_[k])) k++;
    Append(kAdd, dirty_[i], dirty_[k - 1] + 1, &j);
    i = k;
  }
  LM_RETURN_IF_ERROR(env->PWrite(journal_fd_.get(), j.data(), j.size(), journal_size_, journal_path_));
  LM_RETURN_IF_ERROR(env_->SyncData(journal_fd_.get(), journal_path_));
  journal_size_ += j.size();
  dirty_.clear();
  size_dirty_ = false;
  LM_RETURN_IF_ERROR(ApplyPendingLocked());  // the size they depend on is durable now
  if (journal_size_ > kCompactBytes) return Compact();
  return Status::Ok();
}

Status OverlayFile::Remove() {
  std::lock_guard lock(mu_);
  data_fd_.reset();
  journal_fd_.reset();
  if (::unlink(data_path_.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "unlink " + data_path_);
  }
  if (::unlink(journal_path_.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "unlink " + journal_path_);
  }
  return Status::Ok();
}

}  // namespace lm
