#include "tools/cli/password.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <optional>

#include "base/env.h"
#include "tools/cli/commands.h"

namespace lm::cli {

namespace {

std::string g_password_file;  // --password-file

// The first line of a password file, without its line end.
Result<std::string> ReadPasswordFile(const std::string& path, const std::string& what) {
  auto text = CliEnv()->ReadFile(path);
  // Invalid, not NotFound: a named file that cannot be read is an error, never a reason
  // to fall back to the next source.
  if (!text.ok()) return Status::Invalid(text.status().Context(what).message());
  if (text->size() > 64 * 1024) return Status::Invalid(what + " " + path + ": too large to be a password file");
  std::string pw = text->substr(0, text->find('\n'));
  if (!pw.empty() && pw.back() == '\r') pw.pop_back();
  if (pw.empty()) return Status::Invalid(what + " " + path + ": the password is empty");
  return pw;
}

// Reads one line from the terminal without echo; NotFound when there is no terminal.
Result<std::string> Prompt(const std::string& prompt) {
  if (!::isatty(STDIN_FILENO)) return Status::NotFound("no terminal");
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::NotFound("no terminal");
  (void)!::write(fd, prompt.data(), prompt.size());
  struct termios old;
  bool have_termios = ::tcgetattr(fd, &old) == 0;
  if (have_termios) {
    struct termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n' && line.size() < 4096) line.push_back(c);
  if (have_termios) ::tcsetattr(fd, TCSAFLUSH, &old);
  (void)!::write(fd, "\n", 1);
  ::close(fd);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return Status::Invalid("the password is empty");
  return line;
}

const char* EnvVar(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

Result<std::string> FromFlagsOrEnvironment() {
  if (!g_password_file.empty()) return ReadPasswordFile(g_password_file, "--password-file");
  if (const char* f = EnvVar("LIVEMOUNT_PASSWORD_FILE")) return ReadPasswordFile(f, "LIVEMOUNT_PASSWORD_FILE");
  if (const char* p = EnvVar("LIVEMOUNT_PASSWORD")) return std::string(p);
  return Status::NotFound("no password given");
}

}  // namespace

void AddPasswordOptions(CLI::App& app) {
  app.add_option("--password-file", g_password_file,
                 "File whose first line is the repository password (or LIVEMOUNT_PASSWORD_FILE, LIVEMOUNT_PASSWORD)");
}

bool PasswordGiven() {
  return !g_password_file.empty() || EnvVar("LIVEMOUNT_PASSWORD_FILE") || EnvVar("LIVEMOUNT_PASSWORD");
}

Result<std::string> RepoPassword() {
  static std::mutex mu;
  static std::optional<Result<std::string>> cached;
  std::lock_guard lock(mu);
  if (cached) return *cached;
  auto pw = FromFlagsOrEnvironment();
  if (!pw.ok() && pw.status().code() == Code::kNotFound) {
    pw = Prompt("enter the repository password: ");
    if (!pw.ok() && pw.status().code() == Code::kNotFound) {
      pw = Status::Denied("the repository is encrypted: give its password with --password-file, "
                          "LIVEMOUNT_PASSWORD_FILE or LIVEMOUNT_PASSWORD (or run at a terminal)");
    }
  }
  cached = pw;
  return pw;
}

PasswordSource CliPasswordSource() {
  return [] { return RepoPassword(); };
}

Result<std::string> NewPassword(const std::string& file, bool for_init) {
  if (!file.empty()) return ReadPasswordFile(file, "--new-password-file");
  if (for_init) {
    auto pw = FromFlagsOrEnvironment();
    if (pw.ok() || pw.status().code() != Code::kNotFound) return pw;
  }
  auto first = Prompt("enter the new password: ");
  if (!first.ok() && first.status().code() == Code::kNotFound) {
    return Status::Invalid(for_init ? "an encrypted repository needs a password: give it with --password-file, "
                                      "LIVEMOUNT_PASSWORD_FILE or LIVEMOUNT_PASSWORD, or --encryption none"
                                    : "give the new password with --new-password-file (or run at a terminal)");
  }
  LM_RETURN_IF_ERROR(first.status());
  LM_ASSIGN_OR_RETURN(std::string again, Prompt("enter the new password again: "));
  if (again != *first) return Status::Invalid("the two passwords differ");
  return first;
}

}  // namespace lm::cli
