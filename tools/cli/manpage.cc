// `livemount man`: the man page (roff), generated from the command definitions themselves
// (the CLI11 app: every command, argument and option with its help, default and
// environment variable), followed by tools/man/livemount-files.roff (configuration,
// files, environment). The build installs it as man1/livemount.1.
#include <fmt/core.h>

#include <string>
#include <vector>

#include "tools/cli/commands.h"

namespace lm::cli {

namespace {

// Text as roff shows it literally: backslashes escaped, a leading '.' or '\'' protected.
std::string Roff(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

std::string OptionLine(const CLI::Option* o) {
  std::string names;
  for (const std::string& s : o->get_snames()) names += (names.empty() ? "" : ", ") + std::string("\\fB\\-") + s + "\\fR";
  for (const std::string& l : o->get_lnames()) names += (names.empty() ? "" : ", ") + std::string("\\fB\\-\\-") + Roff(l) + "\\fR";
  if (o->get_expected_max() != 0) names += " \\fI" + Roff(o->get_type_name()) + "\\fR";
  return names;
}

std::string Details(const CLI::Option* o) {
  std::string d = Roff(o->get_description());
  if (!o->get_default_str().empty()) d += " (default: " + Roff(o->get_default_str()) + ")";
  if (!o->get_envname().empty()) d += " (environment: " + Roff(o->get_envname()) + ")";
  return d;
}

void Command(const CLI::App& app, const std::string& path, std::string* out) {
  std::string synopsis = "livemount " + path;
  for (const CLI::Option* o : app.get_options([](const CLI::Option* o) { return o->get_positional(); })) {
    std::string name = o->get_name(true);
    synopsis += o->get_required() ? " " + name : " [" + name + "]";
  }
  bool has_options = !app.get_options([](const CLI::Option* o) {
                          const auto& l = o->get_lnames();
                          return o->nonpositional() && l != std::vector<std::string>{"help"} &&
                                 l != std::vector<std::string>{"help-all"};
                        }).empty();
  auto subs = app.get_subcommands([](const CLI::App*) { return true; });
  if (subs.empty()) {
    if (has_options) synopsis += " [OPTIONS]";
    *out += fmt::format(".SS \"{}\"\n{}\n", Roff(synopsis), Roff(app.get_description()));
    for (const CLI::Option* o : app.get_options()) {
      if (o->get_positional()) *out += fmt::format(".TP\n.I {}\n{}\n", Roff(o->get_name(true)), Details(o));
    }
    for (const CLI::Option* o : app.get_options()) {
      const auto& l = o->get_lnames();
      bool help = l == std::vector<std::string>{"help"} || l == std::vector<std::string>{"help-all"};
      if (!o->nonpositional() || help) continue;  // every command has them
      *out += fmt::format(".TP\n{}\n{}\n", OptionLine(o), Details(o));
    }
  }
  for (const CLI::App* sub : subs) Command(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

}  // namespace

std::string ManPage(const CLI::App& app) {
  std::string out;
  out += ".TH LIVEMOUNT 1 \"\" \"livemount 0.1.0\" \"User Commands\"\n";
  out += ".SH NAME\nlivemount \\- run virtual machines straight out of their backups\n";
  out += ".SH SYNOPSIS\n.B livemount\n[\\fB\\-\\-config\\fR \\fIFILE\\fR] [\\fB\\-\\-password\\-file\\fR \\fIFILE\\fR] "
         "\\fICOMMAND\\fR ...\n";
  out += ".SH DESCRIPTION\n"
         "livemount keeps deduplicated, compressed and encrypted backup copies of virtual machines in a "
         "repository (a directory or an S3 bucket). A media agent (\\fBlivemount mount\\fR) shows every backup "
         "copy through FUSE as a directory of the VM's own files, so that a hypervisor boots the VM from it at "
         "once; a pre-stager copies the blocks the VM needs first into a local read-cache, and writes go to an "
         "overlay, so the backup never changes.\n"
         ".PP\nEvery command exits 0 on success; otherwise it prints one line on standard error saying what failed "
         "and where.\n";
  out += ".SH OPTIONS\n";
  for (const CLI::Option* o : app.get_options()) {
    if (!o->nonpositional()) continue;
    out += fmt::format(".TP\n{}\n{}\n", OptionLine(o), Details(o));
  }
  out += ".SH COMMANDS\n";
  Command(app, "", &out);
  return out;
}

void RegisterManCommand(CLI::App& app, int* exit_code) {
  auto* c = app.add_subcommand("man", "Print the man page (roff) of every command");
  c->group("");  // not listed among the commands
  c->callback([&app, exit_code] {
    fmt::print("{}", ManPage(app));
    *exit_code = 0;
  });
}

}  // namespace lm::cli
