#include "profile/prestage.h"

#include "guest/partitions.h"

#include <optional>

#include <algorithm>

#include "store/file_reader.h"

#include <atomic>
#include <cstring>

#include "guest/disk_image.h"
#include <map>
#include <chrono>
#include <thread>
#include <unordered_set>

namespace lm {

Result<std::string> LearnedProfilePath(const std::string& state_dir, const std::string& vm) {
  return StateLayout(state_dir).ProfileFile(vm);
}

Result<std::string> TraceDir(const std::string& state_dir, const std::string& vm) {
  return StateLayout(state_dir).TraceDir(vm);
}

Result<std::vector<Digest>> ProfileChunks(Repository& repo, const BackupRef& b, const Profile& p,
                                          bool all, uint64_t* profile_chunks, uint64_t* missing) {
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(b));
  std::map<std::string, const FileEntry*> files;
  for (auto& f : m.files)
    if (f.type == FileType::kFile) files[f.path] = &f;
  std::map<std::string, FileChunks> loaded;
  auto chunks_of = [&](const FileEntry& f) -> Result<const FileChunks*> {
    auto it = loaded.find(f.path);
    if (it == loaded.end()) {
      LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(b, f));
      it = loaded.emplace(f.path, std::move(fc)).first;
    }
    return &it->second;
  };
  std::vector<Digest> out;
  std::unordered_set<Digest, DigestHash> seen;
  auto add = [&](const Digest& d) {
    if (!d.IsZero() && seen.insert(d).second) out.push_back(d);
  };
  *missing = 0;
  for (const ProfileEntry& e : p.entries) {
    auto f = files.find(e.file);
    if (f == files.end()) {
      (*missing)++;
      continue;
    }
    LM_ASSIGN_OR_RETURN(const FileChunks* fc, chunks_of(*f->second));
    for (auto [off, len] : e.ranges) {
      if (len == 0 || off >= fc->file_size) continue;
      uint64_t end = std::min(fc->file_size, off + len);
      for (uint64_t i = off / fc->chunk_size; i <= (end - 1) / fc->chunk_size; i++) add(fc->digests[i]);
    }
  }
  *profile_chunks = out.size();
  if (all) {
    for (auto& [path, f] : files) {
      LM_ASSIGN_OR_RETURN(const FileChunks* fc, chunks_of(*f));
      for (const Digest& d : fc->digests) add(d);
    }
  }
  return out;
}

Result<PrestageSummary> Prestage(Repository& repo, ChunkSource& source, const BackupRef& b, const Profile& p,
                                 const PrestageOptions& o) {
  auto start = std::chrono::steady_clock::now();
  PrestageSummary sum;
  LM_ASSIGN_OR_RETURN(auto digests, ProfileChunks(repo, b, p, o.all, &sum.profile_chunks,
                                                  &sum.missing_files));
  sum.total_chunks = digests.size();
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0}, cached{0}, fetched{0}, failed{0}, bytes{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < digests.size();) {
      if (o.cancel && o.cancel->load()) {
        done++;
        continue;
      }
      const Digest& d = digests[i];
      if (source.cache().Contains(d)) {
        cached++;
      } else if (source.Ensure(d, b.Name() + " (prestage)", true).ok()) {
        fetched++;
        ChunkLocation loc;
        if (repo.index().Find(d, &loc, nullptr)) bytes += loc.raw_len;
        if (o.staged_chunks) (*o.staged_chunks)++;
      } else {
        failed++;
      }
      done++;
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, o.threads); t++) pool.emplace_back(worker);
  while (done < digests.size()) {
    if (o.progress) o.progress(done, digests.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : pool) t.join();
  source.Drain();  // every fetched chunk is in the cache before we report
  if (o.pin_until > 0 || o.pin_session) {
    for (const Digest& d : digests) (void)source.cache().Pin(d, o.pin_until);
  }
  if (o.progress) o.progress(done, digests.size());
  sum.already_cached = cached;
  sum.fetched = fetched;
  sum.failed = failed;
  sum.bytes_fetched = bytes;
  if (o.staged_bytes) *o.staged_bytes += sum.bytes_fetched;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

Result<Profile> ChooseProfile(Repository& repo, const BackupRef& b, const std::string& explicit_path,
                              const std::string& state_dir, std::string* chosen,
                              std::vector<std::string>* out_notes) {
  std::vector<std::string> scratch;
  std::vector<std::string>& notes = out_notes ? *out_notes : scratch;
  if (!explicit_path.empty()) {  // asked for by name: an error in it is the user's to fix
    *chosen = explicit_path;
    return LoadProfile(repo.env(), explicit_path);
  }
  std::string attached = repo.backend().Describe(b.Prefix() + "profile.json");
  LM_ASSIGN_OR_RETURN(std::string vm_profile, LearnedProfilePath(state_dir, b.vm));
  // The VM's own profile (learned, imported or picked): a damaged one is skipped with a warning.
  std::optional<Profile> own;
  if (PathExists(vm_profile)) {
    auto loaded = LoadProfile(repo.env(), vm_profile);
    if (loaded.ok()) own = std::move(loaded).value();
    else notes.push_back("warning: ignoring the VM's profile: " + loaded.status().message());
  }
  auto attached_text = repo.ReadBackupObject(b, "profile.json");
  if (attached_text.status().code() != Code::kNotFound) {
    auto loaded = attached_text.ok() ? DecodeProfile(*attached_text, attached)
                                     : Result<Profile>(attached_text.status());
    if (!loaded.ok()) {
      notes.push_back("warning: ignoring the profile attached to " + b.Name() + ": " + loaded.status().message());
    } else {
      Profile p = std::move(loaded).value();
      *chosen = attached;
      bool only_guest_files = std::all_of(p.entries.begin(), p.entries.end(),
                                          [](const ProfileEntry& e) { return e.source == "guest-file"; });
      if (only_guest_files) {  // (backup --select-files): the boot still needs its structure first
        std::vector<std::string> ignored;
        LM_ASSIGN_OR_RETURN(Profile st, StructuralProfile(repo, b, &ignored));
        st.Append(std::move(p.entries));
        p.entries = std::move(st.entries);
        *chosen = "structural + " + attached;
      }
      if (!own) return p;
      // Guest files an administrator picked for the VM (profile add-files, browse) always apply.
      std::vector<ProfileEntry> guest_files;
      std::copy_if(own->entries.begin(), own->entries.end(), std::back_inserter(guest_files),
                   [](const ProfileEntry& e) { return e.source == "guest-file"; });
      if (!guest_files.empty()) *chosen = attached + " + guest files from " + vm_profile;
      p.Append(std::move(guest_files));
      return p;
    }
  }
  if (own) {
    *chosen = vm_profile;
    return std::move(*own);
  }
  LM_ASSIGN_OR_RETURN(Profile p, StructuralProfile(repo, b, &notes));
  *chosen = "structural";
  return p;
}

Result<Profile> StructuralProfile(Repository& repo, const BackupRef& b, std::vector<std::string>* notes) {
  LM_ASSIGN_OR_RETURN(BackupManifest m, repo.LoadManifest(b));
  Profile p;
  p.vm = b.vm;
  uint64_t n = 0;
  // Configuration first: the hypervisor reads it before any disk.
  for (auto& f : m.files) {
    if (f.type == FileType::kFile && f.size > 0 && f.size < (1 << 20)) {
      p.entries.push_back({f.path, {{0, f.size}}, "structural", n++, "small file (configuration)"});
    }
  }
  for (auto& f : m.files) {
    if (f.type != FileType::kFile || f.size < (1 << 20)) continue;
    LM_ASSIGN_OR_RETURN(FileChunks fc, repo.LoadFileChunks(b, f));
    FileChunkReader reader(repo, fc);
    auto img = DiskImage::Open([&](uint64_t off, size_t len, char* out) { return reader.Read(off, len, out); },
                               f.size, f.path);
    if (!img.ok()) {
      notes->push_back(f.path + ": " + img.status().message());
      continue;
    }
    for (const ByteRange& r : img->metadata()) {
      p.entries.push_back({f.path, {{r.off, r.len}}, "structural", n++, r.what});
    }
    auto guest = GuestStructure(*img);
    if (!guest.ok()) {
      notes->push_back(f.path + ": " + guest.status().message());
      continue;
    }
    for (const ByteRange& g : *guest) {
      auto host = img->Map(g.off, g.len);
      if (!host.ok()) continue;
      ProfileEntry e{f.path, {}, "structural", n++, "guest " + g.what};
      for (auto& h : *host) e.ranges.push_back({h.off, h.len});
      if (!e.ranges.empty()) p.entries.push_back(std::move(e));
    }
  }
  return p;
}

}  // namespace lm
