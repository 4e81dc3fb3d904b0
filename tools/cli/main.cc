// livemount: run a VM straight out of its backup. See README.md and shared DESIGN.md.
#include <CLI/CLI.hpp>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "tools/cli/commands.h"
#include "tools/cli/config.h"
#include "tools/cli/password.h"

namespace {

// The first positional word when it names no command ("lsit"), else nullptr.
const char* UnknownCommand(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return nullptr;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->check_name(argv[1])) return nullptr;
  }
  return argv[1];
}

}  // namespace

int main(int argc, char** argv) {
  // Everything livemount creates (repository, read-cache, state, logs) holds VM data or
  // describes it: owner-only whatever the caller's umask, as restic and borg do. Restore
  // and the mount set the backed-up modes explicitly, so they are not affected.
  ::umask(077);
  CLI::App app{"livemount: run virtual machines straight out of their backups"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "livemount 0.1.0");
  app.set_help_all_flag("--help-all", "Help for every command");
  // Options of the top-level app (--password-file) may also follow the command.
  app.fallthrough();
  int exit_code = 0;
  try {
    // Read before the commands are defined: its settings are their defaults.
    auto config = lm::cli::LoadConfig(argc, argv);
    if (!config.ok()) {
      std::fprintf(stderr, "livemount: %s\n", config.status().message().c_str());
      return 1;
    }
    lm::cli::ApplyToEnvironment(*config);
    lm::cli::SetCurrentConfig(std::move(config).value());
    static std::string config_file;  // read above, before the commands were defined
    app.add_option("--config", config_file, "Configuration file (default: $LIVEMOUNT_CONFIG, else " +
                                   std::string(lm::cli::kDefaultConfigFile) + " if it exists)");
    lm::cli::AddPasswordOptions(app);
    lm::cli::RegisterRepoCommands(app, &exit_code);
    lm::cli::RegisterRestoreCommand(app, &exit_code);
    lm::cli::RegisterRunCommand(app, &exit_code);
    lm::cli::RegisterMountCommands(app, &exit_code);
    lm::cli::RegisterProfileCommands(app, &exit_code);
    lm::cli::RegisterExportCommands(app, &exit_code);
    lm::cli::RegisterGuestCommands(app, &exit_code);
    lm::cli::RegisterBrowseCommand(app, &exit_code);
    lm::cli::RegisterLifecycleCommands(app, &exit_code);
    lm::cli::RegisterKeyCommands(app, &exit_code);
    lm::cli::RegisterCompletionCommand(app, &exit_code);
    lm::cli::RegisterManCommand(app, &exit_code);
    if (const char* cmd = UnknownCommand(app, argc, argv)) {
      std::fprintf(stderr, "livemount: unknown command '%s' (see livemount --help)\n", cmd);
      return 2;
    }
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "livemount: %s (see livemount --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    // A defect, never an expected path: still one line and a non-zero exit, no abort.
    std::fprintf(stderr, "livemount: internal error: %s\n", e.what());
    return 70;
  } catch (...) {
    std::fprintf(stderr, "livemount: internal error\n");
    return 70;
  }
  return exit_code;
}
