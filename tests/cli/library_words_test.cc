// The library never names a CLI flag or a kvmrun command in what it says (error.h): a harness
// that embeds it has neither. Every string literal in the library's sources is read, and one
// that holds "--flag" (beyond an argv element of another program, such as swtpm's "--tpm2")
// or a "kvmrun SUBCOMMAND" fails here, naming the file and line. The CLI words hints itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

// The literals on one line of C++ (escapes kept; a line's comment is not code).
std::vector<std::string> Literals(const std::string& line) {
  std::vector<std::string> out;
  bool in = false;
  std::string current;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (!in) {
      if (c == '/' && i + 1 < line.size() && line[i + 1] == '/') break;
      if (c == '\'' && i + 2 < line.size() && line[i + 2] == '\'') {  // a char literal
        i += 2;
        continue;
      }
      if (c == '"') in = true, current.clear();
      continue;
    }
    if (c == '\\' && i + 1 < line.size()) {
      current += line.substr(i, 2);
      ++i;
    } else if (c == '"') {
      in = false;
      out.push_back(current);
    } else {
      current += c;
    }
  }
  return out;
}

// Whether a literal names a CLI flag ("--name" in text; a literal that is only a flag is an
// argv element of another program, such as swtpm's "--tpm2") or a quoted kvmrun command.
bool NamesCliWords(const std::string& literal) {
  static const std::regex argv_element(R"(^--[a-z0-9-]+(=.*)?$)");
  static const std::regex flag(R"((^|[\s('`])--[a-z][a-z0-9-]*)");
  static const std::regex command(
      R"((^|['`])kvmrun (run|policy|boot-test|timecheck|verify|doctor|qmp|exec|sync|snapshot|)"
      R"(console|report|ps|stop)\b)");
  if (std::regex_search(literal, argv_element)) return false;
  return std::regex_search(literal, flag) || std::regex_search(literal, command);
}

TEST(LibraryWordsTest, NoLibraryStringNamesACliFlagOrCommand) {
  const fs::path root = KVMRUN_SOURCE_DIR;
  int files = 0;
  std::vector<std::string> found;
  for (const char* room : {"agent", "core", "io", "launcher", "policy", "qmp", "verify",
                           "timecheck", "include/kvmrun"}) {
    for (const auto& entry : fs::recursive_directory_iterator(root / room)) {
      const std::string ext = entry.path().extension();
      if (ext != ".cc" && ext != ".h") continue;
      ++files;
      std::ifstream in(entry.path());
      int number = 0;
      for (std::string line; std::getline(in, line);) {
        ++number;
        for (const std::string& literal : Literals(line)) {
          if (NamesCliWords(literal)) {
            found.push_back(fs::relative(entry.path(), root).string() + ":" +
                            std::to_string(number) + ": \"" + literal + "\"");
          }
        }
      }
    }
  }
  EXPECT_GT(files, 50);
  for (const std::string& f : found) ADD_FAILURE() << f;
}

// The scanner itself: what it must find and what it must let pass.
TEST(LibraryWordsTest, TheScannerReadsLiteralsNotComments) {
  EXPECT_EQ(Literals(R"(x = "a --b" + f('"') + "c"; // "--d")"),
            (std::vector<std::string>{"a --b", "c"}));
  EXPECT_EQ(Literals(R"(s = "say \"hi\" --x";)"), (std::vector<std::string>{R"(say \"hi\" --x)"}));
  for (const char* named : {"restore it with that QEMU (--qemu)", "--snapshot-at: 'x' did not",
                            "; 'kvmrun sync' sets it", "kvmrun doctor says", "give --shard I/N"}) {
    EXPECT_TRUE(NamesCliWords(named)) << named;
  }
  for (const char* plain : {"--tpm2", "--ctrl=type=unixio", "not a kvmrun snapshot", "x--y",
                            "kvmrun does not follow it", "-append", "a - b"}) {
    EXPECT_FALSE(NamesCliWords(plain)) << plain;
  }
}

}  // namespace
}  // namespace kvmrun
