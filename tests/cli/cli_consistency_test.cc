// One CLI: every subcommand's options read from the binary's own --help, and the shared
// concepts held to one name, one placeholder, and help that teaches (usage, exit codes,
// examples). A new subcommand is checked the day it is listed.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

using testing::RunKvmrun;

std::vector<std::string> Subcommands() {
  const auto r = RunKvmrun({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> names;
  const std::regex line(R"(^  ([a-z-]+)\t)");
  for (const std::string& l : testing::Lines(r.out)) {
    std::smatch m;
    if (std::regex_search(l, m, line)) names.push_back(m[1]);
  }
  return names;
}

TEST(CliConsistencyTest, SharedConceptsHaveOneNameAndOnePlaceholder) {
  const std::vector<std::string> subcommands = Subcommands();
  ASSERT_GE(subcommands.size(), 13u);
  // Names a concept had, or could have, elsewhere -> the one name it has.
  const std::map<std::string, std::string> one_name = {
      {"socket", "qmp-socket"},
      {"qmp", "qmp-socket"},
      {"monitor", "qmp-socket"},
      {"agent-timeout", "agent-wait"},
      {"vm", "name"},
      {"qemu-binary", "qemu"},
      {"qemu-path", "qemu"},
      {"guest-os", "os"},
      {"time-limit", "timeout"},
      {"log", "console-log"},
      {"console-file", "console-log"},
      {"accelerator", "accel"},
  };
  // Placeholders that differ on purpose: run creates its QMP socket at a PATH, the others
  // connect to a PATH or a named VM's; sync takes a named VM or a QMP socket's PATH; policy
  // renders for one accelerator (auto needs a host); the positional COMMAND of qmp and exec
  // are different things; report merge writes its JSON to a FILE beside its --junit FILE (what
  // a CI keeps), where the others print JSON on stdout.
  const std::set<std::pair<std::string, std::string>> differ = {
      {"run", "qmp-socket"}, {"report", "json"}, {"sync", "name"},
      {"policy", "accel"},   {"qmp", "command"}, {"qmp", "arguments"}};
  std::map<std::string, std::pair<std::string, std::string>>
      placeholder;  // option -> (first, where)
  for (const std::string& sub : subcommands) {
    SCOPED_TRACE(sub);
    const auto r = RunKvmrun({sub, "--help"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("Usage: kvmrun " + sub, 0), 0u) << r.out;
    EXPECT_NE(r.out.find("\nExamples:\n  kvmrun "), std::string::npos) << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("[Ee]xit:? [0-9]"))) << "no exit codes";
    for (const auto& [option, value] : testing::HelpOptions(r.out)) {
      const auto renamed = one_name.find(option);
      EXPECT_TRUE(renamed == one_name.end())
          << "--" << option << " is called --" << renamed->second << " everywhere else";
      if (differ.count({sub, option}) != 0 || option == "help") continue;
      const auto [it, first] = placeholder.emplace(option, std::make_pair(value, sub));
      EXPECT_TRUE(first || it->second.first == value)
          << "--" << option << " " << value << " here, but --" << option << " " << it->second.first
          << " in " << it->second.second;
    }
  }
}

// Every option's description is one paragraph wrapped at 80 columns: no line longer, and no
// line broken early (the next line's first word would have fitted), as hand breaks made them.
// The positional words are in the usage line, not listed as options.
TEST(CliConsistencyTest, HelpWrapsEvenlyAndListsNoPositionalHolders) {
  for (const std::string& sub : Subcommands()) {
    SCOPED_TRACE(sub);
    const auto r = RunKvmrun({sub, "--help"});
    const std::vector<std::string> lines = testing::Lines(r.out);
    bool in_options = false;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i] == "Options:") in_options = true;
      if (!in_options) continue;
      EXPECT_LE(lines[i].size(), 80u) << lines[i];
      if (i + 1 == lines.size() || lines[i + 1].rfind("      ", 0) != 0) continue;
      // lines[i + 1] continues the description lines[i] holds.
      const std::string next = lines[i + 1].substr(lines[i + 1].find_first_not_of(' '));
      const std::string first_word = next.substr(0, next.find(' '));
      // (A line that holds only an option's name too long for its column is not text.)
      const std::size_t column = lines[i + 1].find_first_not_of(' ');
      if (lines[i].size() > column && lines[i].compare(column - 2, 2, "  ") == 0) {
        EXPECT_GT(lines[i].size() + 1 + first_word.size(), 80u) << "broken early:\n"
                                                                << lines[i] << "\n"
                                                                << lines[i + 1];
      }
    }
    for (const char* holder : {"--operands", "--command", "--arguments"}) {
      EXPECT_EQ(r.out.find(std::string("\n  ") + holder), std::string::npos) << holder;
    }
  }
}

// A bare `kvmrun` is a usage error (exit 2, the subcommands on stderr); --help is not.
TEST(CliConsistencyTest, BareKvmrunIsAUsageErrorAndHelpIsNot) {
  const auto bare = RunKvmrun({});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_TRUE(bare.out.empty());
  EXPECT_NE(bare.err.find("Usage: kvmrun <subcommand>"), std::string::npos) << bare.err;
  const auto help = RunKvmrun({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: kvmrun <subcommand>"), std::string::npos) << help.out;
}

// One version: what --version prints is the CMake project's, which debian/changelog packages.
TEST(CliConsistencyTest, OneVersionEverywhere) {
  const auto r = RunKvmrun({"--version"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_match(r.out, m, std::regex(R"(kvmrun (\d+\.\d+\.\d+)( \(git [^)]+\))?\n)")))
      << r.out;
  const std::string version = m[1];
  const auto read = [](const std::string& path) {
    std::ifstream in(std::string(KVMRUN_SOURCE_DIR) + "/" + path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  EXPECT_NE(read("CMakeLists.txt").find("project(kvmrun VERSION " + version + " "),
            std::string::npos);
  EXPECT_EQ(read("debian/changelog").rfind("kvmrun (" + version + ") ", 0), 0u)
      << "debian/changelog's newest entry is not " << version;
  EXPECT_EQ(RunKvmrun({"-V"}).out, r.out);
}

// Options renamed for one CLI still take their old names, and both at once is an error.
TEST(CliConsistencyTest, OldOptionNamesStillWork) {
  const auto both = RunKvmrun({"qmp", "--socket", "/nowhere", "--qmp-socket", "/nowhere", "x"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  const auto old_name = RunKvmrun({"qmp", "--socket=/nonexistent/qmp.sock", "query-kvm"});
  EXPECT_NE(old_name.err.find("/nonexistent/qmp.sock"), std::string::npos) << old_name.err;
}

// --wait-for-viewer without a display a viewer could reach: refused before anything starts,
// naming the display and the valid ones.
TEST(CliConsistencyTest, WaitForViewerNeedsAVncOrSpiceDisplay) {
  for (const char* display : {"none", "gtk"}) {
    const auto r = RunKvmrun({"run", "--kernel", "/nonexistent", "--display", display,
                              "--wait-for-viewer", "--dry-run"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(std::string("--wait-for-viewer: no viewer can connect to --display ") +
                         display + "; valid with --display vnc[=...] or spice"),
              std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace kvmrun
