#include "profile/choice.h"

#include <algorithm>
#include <iterator>
#include <optional>

#include "base/state_layout.h"
#include "profile/structural.h"

namespace lm {

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
  LM_ASSIGN_OR_RETURN(std::string vm_profile, StateLayout(state_dir).ProfileFile(b.vm));
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

}  // namespace lm
