// Passwords of encrypted repositories, with restic's conventions: --password-file FILE,
// then LIVEMOUNT_PASSWORD_FILE, then LIVEMOUNT_PASSWORD, then a prompt when standing at a
// terminal. A password file holds the password on its first line (a trailing newline is
// not part of it). Nothing is asked for an unencrypted repository.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/status.h"
#include "store/repository.h"

namespace lm::cli {

// Adds --password-file to the top-level app (given before or after the command).
void AddPasswordOptions(CLI::App& app);
// The repository password from the sources above; asked once per process and kept.
Result<std::string> RepoPassword();
// A PasswordSource that asks RepoPassword() only when an encrypted repository is opened.
PasswordSource CliPasswordSource();
// True when a password was given by flag or environment (whether used or not).
bool PasswordGiven();
// A new password (init, key add, key passwd): from `file` if given, else for init the
// repository password's sources, else typed twice at a terminal.
Result<std::string> NewPassword(const std::string& file, bool for_init);

}  // namespace lm::cli
