// The `livemount` subcommands. Each Register* adds its subcommands to the CLI11 app; the
// handlers return a process exit code and print one line on stderr on failure.
#pragma once

#include <CLI/CLI.hpp>

#include "agent/nfs_export.h"
#include "base/status.h"
#include "guest/view.h"
#include "profile/guest_files.h"
#include "profile/profile.h"

namespace lm::cli {

void RegisterRepoCommands(CLI::App& app, int* exit_code);   // init backup list verify
void RegisterRestoreCommand(CLI::App& app, int* exit_code);  // restore
void RegisterRunCommand(CLI::App& app, int* exit_code);      // run
void RegisterMountCommands(CLI::App& app, int* exit_code);  // mount umount stats discard expire
void RegisterProfileCommands(CLI::App& app, int* exit_code);  // profile ..., prestage
void RegisterExportCommands(CLI::App& app, int* exit_code);   // export
void RegisterGuestCommands(CLI::App& app, int* exit_code);    // ls, cat, profile add-files
void RegisterBrowseCommand(CLI::App& app, int* exit_code);    // browse
void RegisterLifecycleCommands(CLI::App& app, int* exit_code);  // forget prune
void RegisterKeyCommands(CLI::App& app, int* exit_code);        // key list|add|remove|passwd
void RegisterCompletionCommand(CLI::App& app, int* exit_code);  // completion bash
void RegisterManCommand(CLI::App& app, int* exit_code);         // man (roff)
// `stats REPO [VM]`: the repository's statistics (`stats MOUNTPOINT` is the mount's).
int RepoStatsCommand(const std::string& repo, const std::string& vm, bool as_json);

// --bind, --nfs-port, --mount-port, --client (export and mount --export).
void AddExportOptions(CLI::App* c, ExportOptions* e);

// The guest view of REPO's VM[@BACKUP] (resolving the spec into *ref).
Result<std::unique_ptr<GuestView>> OpenGuestView(Repository& repo, const std::string& spec, BackupRef* ref);
// Adds the guest paths' ranges to `base` (replacing earlier picks of the same paths).
Result<Profile> AddGuestFiles(Profile base, GuestView& view, const std::vector<std::string>& paths,
                              uint64_t* files, uint64_t* bytes);
// ... to the VM's profile in STATE/profiles (started from the structural one if none).
Status SaveGuestFiles(Repository& repo, const BackupRef& ref, GuestView& view, const std::vector<std::string>& paths,
                      const std::string& state_dir, uint64_t* files, uint64_t* bytes, std::string* path_out);

// The composition root's Env: the real filesystem. Everything below tools/ gets it passed.
Env* CliEnv();
// The REPO argument of a command, LIVEMOUNT_REPOSITORY when left out. `existing`: the
// command needs a repository that is there (every one but init).
CLI::Option* AddRepoArgument(CLI::App* c, std::string* repo, bool existing = true);
inline CLI::Option* AddRepoArgument(CLI::App* c, const std::shared_ptr<std::string>& repo) {
  return AddRepoArgument(c, repo.get());
}
// Opens a repository with the CLI's Env, its chunk index kept in `cache_dir` (default:
// DefaultCacheDir()) as LIVEMOUNT_CHUNK_INDEX says.
Result<std::unique_ptr<Repository>> OpenRepo(const std::string& path, const std::string& cache_dir = "");

// Prints `j` indented on stdout. Names are stored losslessly (base/json_bytes.h); this
// last line of defence only keeps a stray invalid byte from aborting the output.
void PrintJson(const nlohmann::json& j);

// A time for people: local, ISO 8601 with its zone ("2026-11-26 05:40:12+01:00", or "...Z").
std::string ZonedLocalTime(int64_t ns);

// Prints "livemount: <message>" to stderr and returns 1 (or 0 if ok).
int Report(const Status& s);

}  // namespace lm::cli
