// livemount: run a VM straight out of its backup. See README.md and shared DESIGN.md.
#include <CLI/CLI.hpp>

#include "tools/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"livemount: run virtual machines straight out of their backups"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "livemount 0.1.0");
  int exit_code = 0;
  lm::cli::RegisterRepoCommands(app, &exit_code);
  lm::cli::RegisterMountCommands(app, &exit_code);
  lm::cli::RegisterProfileCommands(app, &exit_code);
  lm::cli::RegisterExportCommands(app, &exit_code);
  lm::cli::RegisterGuestCommands(app, &exit_code);
  lm::cli::RegisterBrowseCommand(app, &exit_code);
  try {
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
  }
  return exit_code;
}
