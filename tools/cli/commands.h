// The `livemount` subcommands. Each Register* adds its subcommands to the CLI11 app; the
// handlers return a process exit code and print one line on stderr on failure.
#pragma once

#include <CLI/CLI.hpp>

#include "fs/nfs_export.h"
#include "store/status.h"

namespace lm::cli {

void RegisterRepoCommands(CLI::App& app, int* exit_code);   // init backup list verify restore
void RegisterMountCommands(CLI::App& app, int* exit_code);  // mount umount stats discard
void RegisterProfileCommands(CLI::App& app, int* exit_code);  // profile ..., prestage
void RegisterExportCommands(CLI::App& app, int* exit_code);   // export

// --bind, --nfs-port, --mount-port, --client (export and mount --export).
void AddExportOptions(CLI::App* c, ExportOptions* e);

// Prints "livemount: <message>" to stderr and returns 1 (or 0 if ok).
int Report(const Status& s);

}  // namespace lm::cli
