// VM files (cli/vm_file.h) through the real CLI: every key of `kvmrun run` means what its option
// means, the command line wins, paths are relative to the file, and every kind of mistake names
// the file, the line and the key. --dump-config is the observable: it prints the effective
// definition after the same checks a run makes.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/run_command.h"
#include "tests/support/scratch.h"

namespace kvmrun {
namespace {

using testing::RunKvmrun;
using testing::Scratch;

// The dump without its first line (which names the file it came from, if any).
std::string Body(const std::string& dump) { return dump.substr(dump.find('\n') + 1); }

// A value for every `kvmrun run` option a file may set; a flag's is empty (`KEY = true`).
// Paths are absolute here (relative ones have their own test). A new option of `run` fails the
// EveryRunOptionIsAKey test until it has a value here.
std::map<std::string, std::string> SampleValues(const Scratch& s) {
  const std::string file = s.File("some.img", "x");
  const std::string dir = s.Dir("somedir");
  return {
      {"os", "windows-10"},
      {"qemu", "/usr/bin/qemu-system-x86_64"},
      {"accel", "tcg"},
      {"rtc-base", "utc"},
      {"rtc-policy", "slew"},
      {"rtc-clock", "vm"},
      {"pit-policy", "discard"},
      {"hpet", "on"},
      {"hv-time", "off"},
      {"hyperv", "full"},
      {"kvmclock", "off"},
      {"machine", "q35"},
      {"cpu", "max"},
      {"memory", "3G"},
      {"cpus", "3"},
      {"firmware", "uefi"},
      {"tpm", ""},
      {"no-tpm", ""},
      {"kernel", file},
      {"initrd", file},
      {"append", "console=ttyS0 quiet"},
      {"disk", file + ",bus=sata"},
      {"share", dir + ",tag=src,ro"},
      {"readonly-disk", file},
      {"snapshot", ""},
      {"cdrom", file},
      {"boot", "cdrom"},
      {"net", ""},
      {"net-model", "e1000"},
      {"forward", "tcp:2222:22"},
      {"display", "vnc=unix"},
      {"state-dir", dir},
      {"no-reboot", ""},
      {"wait-for-viewer", ""},
      {"no-agent", ""},
      {"name", "filevm"},
      {"detach", ""},
      {"qmp-socket", s.Path("qmp.sock")},
      {"firmware-dir", dir},
      {"extra-arg", "-no-hpet"},
      {"verify", "warn"},
      {"resync", "auto"},
      {"max-offset", "5"},
      {"agent-wait", "30"},
      {"timeout", "90"},
      {"grace", "3"},
      {"console-log", s.Path("console.log")},
      {"console-input", "off"},
      {"escape-key", "none"},
      {"verbose", ""},
      {"quiet", ""},
      {"json", ""},
      {"marker", "login:"},
      {"restore", file},
      {"snapshot-at", "login:"},
      {"save", s.Path("saved.kvmrun")},
      {"dry-run", ""},
  };
}

std::string TomlLine(const std::string& key, const std::string& value) {
  if (value.empty()) return key + " = true\n";
  return key + " = \"" + value + "\"\n";
}

TEST(VmFileTest, EveryRunOptionIsAKeyThatMeansTheSame) {
  Scratch s;
  const std::map<std::string, std::string> samples = SampleValues(s);
  const auto help = RunKvmrun({"run", "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  std::set<std::string> keys;
  for (const auto& [option, placeholder] : testing::HelpOptions(help.out)) keys.insert(option);
  for (const char* not_a_key : {"help", "vm-file", "dump-config"}) keys.erase(not_a_key);
  for (const std::string& key : keys) {
    SCOPED_TRACE(key);
    const auto sample = samples.find(key);
    ASSERT_NE(sample, samples.end()) << "--" << key << " has no sample value in this test";
    // The options that only go in pairs get their partner on both command lines.
    std::vector<std::string> partner;
    if (key == "snapshot-at") partner = {"--save", samples.at("save")};
    if (key == "save") partner = {"--snapshot-at", samples.at("snapshot-at")};
    if (key == "wait-for-viewer") partner = {"--display", samples.at("display")};
    const std::string file = s.File("one.toml", TomlLine(key, sample->second));
    std::vector<std::string> file_argv = {"run", file, "--dump-config"};
    file_argv.insert(file_argv.end(), partner.begin(), partner.end());
    const auto from_file = RunKvmrun(file_argv);
    ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
    std::vector<std::string> argv = {"run", "--" + key};
    if (!sample->second.empty()) argv.push_back(sample->second);
    argv.push_back("--dump-config");
    argv.insert(argv.end(), partner.begin(), partner.end());
    const auto from_options = RunKvmrun(argv);
    ASSERT_EQ(from_options.exit_code, 0) << from_options.err;
    EXPECT_EQ(Body(from_file.out), Body(from_options.out));
    // ... and the key is set in it, not left at its default.
    EXPECT_TRUE(std::regex_search(from_file.out, std::regex("(^|\n)" + key + " = ")))
        << from_file.out;
  }
  // All keys at once (but those that exclude others: --no-tpm, --quiet, --detach, --no-agent)
  // give one definition with all of them.
  std::string all;
  for (const auto& [key, value] : samples) {
    if (key != "no-tpm" && key != "quiet" && key != "detach" && key != "no-agent") {
      all += TomlLine(key, value);
    }
  }
  const auto r = RunKvmrun({"run", s.File("all.toml", all), "--dump-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("memory = \"3G\"\ncpus = 3\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("forward = [\"tcp:2222:22\"]"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\n# "), std::string::npos) << "a default left: " << r.out;
}

TEST(VmFileTest, CommandLineOptionsWinOverTheFile) {
  Scratch s;
  const std::string a = s.File("a.img", "a"), b = s.File("b.img", "b");
  const std::string file = s.File("vm.toml",
                                  "memory = \"1G\"\n"
                                  "tpm = false\n"
                                  "disk = [\"" +
                                      a +
                                      "\"]\n"
                                      "net = true\n");
  const auto r = RunKvmrun({"run", file, "--memory", "2G", "--tpm", "--disk", b, "--dump-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("memory = \"2G\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\ntpm = true"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("no-tpm"), std::string::npos) << "--tpm beats tpm = false: " << r.out;
  EXPECT_NE(r.out.find("disk = [\"" + b + "\"]"), std::string::npos) << "replaced: " << r.out;
  EXPECT_NE(r.out.find("net = true"), std::string::npos) << "the rest is the file's: " << r.out;
  // --vm-file is the same as the first word.
  const auto named = RunKvmrun({"run", "--vm-file", file, "--dump-config"});
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_NE(named.out.find("memory = \"1G\""), std::string::npos) << named.out;
  EXPECT_NE(named.out.find("no-tpm = true"), std::string::npos) << named.out;
}

TEST(VmFileTest, RelativePathsAreRelativeToTheFile) {
  Scratch s;
  s.Dir("vms");
  s.Dir("vms/guest");
  s.File("vms/guest/vmlinuz", "k");
  s.File("vms/root,1.img", "r");
  s.Dir("vms/src");
  const std::string file = s.File("vms/vm.toml",
                                  "kernel = \"guest/vmlinuz\"\n"
                                  "disk = [\"root,,1.img,bus=sata\", {file = \"root,1.img\"}]\n"
                                  "share = [{dir = \"src\", tag = \"src\"}]\n"
                                  "qemu = \"qemu-system-x86_64\"\n");
  // Run from elsewhere: the file's directory counts, not the working directory.
  const auto r = RunKvmrun({"run", file, "--dump-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string vms = s.Path("vms");
  EXPECT_NE(r.out.find("kernel = \"" + vms + "/guest/vmlinuz\""), std::string::npos) << r.out;
  EXPECT_NE(
      r.out.find("disk = [\"" + vms + "/root,,1.img,bus=sata\", \"" + vms + "/root,,1.img\"]"),
      std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("share = [\"" + vms + "/src,tag=src\"]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("qemu = \"qemu-system-x86_64\""), std::string::npos)
      << "a bare QEMU name is looked up in PATH, not made a path: " << r.out;
}

// Each kind of mistake: exit 2, one line, "FILE:LINE: KEY: why", nothing else printed.
TEST(VmFileTest, BadValuesNameTheFileLineAndKey) {
  Scratch s;
  struct Case {
    std::string text;
    std::string expected;  // after "FILE:"
  };
  const std::vector<Case> cases = {
      {"os = \"linux\"\n\nmemory = \"4Q\"\n", "3: memory: invalid value '4Q'"},
      {"os = \"plan9\"\n", "1: os: unknown guest OS 'plan9'; valid: "},
      {"cpus = \"many\"\n", "1: cpus: invalid value 'many'; valid: N"},
      {"firmware = \"coreboot\"\n",
       "1: firmware: invalid value 'coreboot'; valid: bios, uefi, uefi-secure"},
      {"net = \"yes\"\n", "1: net: expected true or false, not a string"},
      {"memory = [\"1G\"]\n", "1: memory: expected one value, not an array"},
      {"append = { a = 1 }\n", "1: append: expected a string or a number, not a table"},
      {"hpet = true\n", ""},  // on|off options take true and false
      {"verify = true\n", "1: verify: invalid value 'on'; valid: off, warn, enforce"},
      {"grace = -1.5\n", "1: grace: invalid value"},
      {"started = 1979-05-27\n", "1: started: unknown key"},
      {"kernel = 1979-05-27\n", "1: kernel: expected a string or a number, not a date"},
      {"disk = [{ file = \"x.img\", speed = \"fast\" }]\n",
       "1: disk.speed: unknown key; valid: file, format, bus"},
      {"disk = [{ bus = \"sata\" }]\n", "1: disk: a table here needs 'file'"},
      {"share = [{ dir = \".\", ro = \"yes\" }]\n",
       "1: share.ro: expected true or false, not a string"},
      {"# a VM\nos = \"linux\"\ncolour = \"blue\"\n",
       "3: colour: unknown key (not an option of kvmrun run); valid: os, qemu, accel"},
      {"help = true\n", "1: help: unknown key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string file = s.File("bad.toml", c.text);
    const auto r = RunKvmrun({"run", file, "--dump-config"});
    if (c.expected.empty()) {
      EXPECT_EQ(r.exit_code, 0) << r.err;
      continue;
    }
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(r.err.rfind("kvmrun run: " + file + ":" + c.expected, 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // A value the command line gives is the command line's mistake, not the file's.
  const std::string file = s.File("ok.toml", "memory = \"1G\"\n");
  const auto r = RunKvmrun({"run", file, "--memory", "4Q", "--dump-config"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("kvmrun run: --memory: ", 0), 0u) << r.err;
}

TEST(VmFileTest, SyntaxErrorsGiveTheirLine) {
  Scratch s;
  const std::string toml = s.File("broken.toml", "os = \"linux\"\n\nmemory = \n");
  auto r = RunKvmrun({"run", toml});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("kvmrun run: " + toml + ":3: syntax error: ", 0), 0u) << r.err;
  const std::string json =
      s.File("broken.json", "{\n  \"os\": \"linux\",\n  \"memory\" \"1G\"\n}\n");
  r = RunKvmrun({"run", json});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("kvmrun run: " + json + ":3: syntax error: ", 0), 0u) << r.err;
  // JSON errors after parsing have their key's line too, found as late as the VM's start.
  const std::string json_bad = s.File("bad.json", "{\n  \"os\": \"linux\",\n  \"cpus\": -2\n}\n");
  r = RunKvmrun({"run", json_bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("kvmrun run: " + json_bad + ":3: cpus: ", 0), 0u) << r.err;
  r = RunKvmrun({"run", s.Path("missing.toml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.toml': cannot read it"), std::string::npos) << r.err;
}

// Non-ASCII text means what TOML says wherever TOML allows it (strings of all four kinds,
// comments), and is a one-line syntax error with its line anywhere else; the parser we use never
// sees it (Debian 12's toml++ reaches undefined behaviour on some characters, docs/security.md).
TEST(VmFileTest, NonAsciiTextKeepsItsMeaningAndIsRefusedOutsideStrings) {
  Scratch s;
  const std::string file =
      s.File("text.toml",
             "# caf\xc3\xa9 \xe2\x80\x94 a comment\n"
             "append = \"caf\xc3\xa9 \xf0\x9f\x90\xa7 \xe3\x80\x80 \xef\xbb\xbf\"\n"
             "marker = 'l\xc3\xa1 \"q\" C:\\dir'\n"
             "snapshot-at = '''\n"
             "\xc2\xa1 \"x\" \\d'''''\n"
             "save = \"/nonexistent/s.kvmrun\"\nname = \"ok\"\n");
  const auto r = RunKvmrun({"run", file, "--dump-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("append = \"caf\xc3\xa9 \xf0\x9f\x90\xa7 \xe3\x80\x80 \xef\xbb\xbf\"\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("marker = \"l\xc3\xa1 \\\"q\\\" C:\\\\dir\"\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("snapshot-at = \"\xc2\xa1 \\\"x\\\" \\\\d''\"\n"), std::string::npos)
      << r.out;
  // A line-ending backslash in a multi-line string skips the next line's indent up to a
  // non-ASCII character, which is kept (toml++ asked whether it was whitespace).
  const std::string joined = s.File("joined.toml", "append = \"\"\"\nab\\\n   \xc2\xa1z\"\"\"\n");
  const auto j = RunKvmrun({"run", joined, "--dump-config"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.out.find("append = \"ab\xc2\xa1z\"\n"), std::string::npos) << j.out;

  struct Case {
    std::string text;
    std::string expected;  // after "FILE:"
  };
  const std::vector<Case> cases = {
      {"os = \"linux\"\nm\xc3\xa9moire = \"1G\"\n", "2: syntax error: the character U+00E9"},
      {"os = \"linux\"\xc2\xa0\n", "1: syntax error: the character U+00A0"},
      {"memory = 1\xc2\xa1\n", "1: syntax error: the character U+00A1"},
      {"memory = 1\xe3\x80\x81\n", "1: syntax error: the character U+3001"},
      {"memory = 1\xef\xbc\x91\n", "1: syntax error: the character U+FF11"},
      {"append = \"\xff\"\n", "1: not UTF-8 text"},
      {"append = \"\xed\xa0\x80\"\n", "1: not UTF-8 text"},  // a surrogate
      {"append = \"\xc3\"", "1: not UTF-8 text"},             // cut off
      {"append = \"\\\xc3\xa9\"\n", "1: syntax error: an escape TOML does not know"},
      {"append = \"\"\"\na\nb\\\n\n\"\"\"\nmemory = \n", "6: syntax error: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const std::string bad_file = s.File("bad.toml", c.text);
    const auto refused = RunKvmrun({"run", bad_file, "--dump-config"});
    EXPECT_EQ(refused.exit_code, 2) << refused.out;
    EXPECT_EQ(refused.err.rfind("kvmrun run: " + bad_file + ":" + c.expected, 0), 0u)
        << refused.err;
    EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  }
}

// Nesting is bounded before a parser recurses (30 000 dotted keys, or JSON 50 000 deep,
// overflowed the stack): deeper than 32 levels is a one-line error with its line, and a quote
// or a comment does not hide a level from the count.
TEST(VmFileTest, NestingIsBoundedBeforeAParserRecurses) {
  Scratch s;
  std::string dotted = "a";
  for (int i = 0; i < 30000; ++i) dotted += ".a";
  std::string header = "[t";
  for (int i = 0; i < 40; ++i) header += ".t";
  struct Case {
    std::string name;
    std::string text;
    std::string expected;  // after "FILE:"
  };
  const std::vector<Case> cases = {
      {"dotted.toml", "os = \"linux\"\n" + dotted + " = 1\n", "2: nested deeper than 32 levels"},
      {"header.toml", "os = \"linux\"\n\n" + header + "]\n", "3: nested deeper than 32 levels"},
      {"arrays.toml", "x = " + std::string(100, '[') + "\n", "1: nested deeper than 32 levels"},
      {"quoted.toml", "'k' = \"#\"\n\"q\".'r' = " + std::string(40, '{') + "\n",
       "2: nested deeper than 32 levels"},
      {"deep.json", std::string(50000, '['), "1: nested deeper than 32 levels"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = s.File(c.name, c.text);
    const auto r = RunKvmrun({"run", file, "--dump-config"});
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.err.find(file + ":" + c.expected), std::string::npos) << r.err.substr(0, 300);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
  }
  // Two levels, as a VM file's disks and shares have, are far from the bound.
  const std::string ok = s.File("ok.toml", "disk = [{ file = \"/x.img\", bus = \"sata\" }]\n");
  EXPECT_EQ(RunKvmrun({"run", ok, "--dump-config"}).exit_code, 0);
}

TEST(VmFileTest, JsonAndTomlGiveTheSameDefinition) {
  for (const char* dir : {KVMRUN_SOURCE_DIR "/examples/vm/linux-ci"}) {
    const auto toml = RunKvmrun({"run", std::string(dir) + ".toml", "--dump-config"});
    const auto json = RunKvmrun({"run", std::string(dir) + ".json", "--dump-config"});
    ASSERT_EQ(toml.exit_code, 0) << toml.err;
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(Body(toml.out), Body(json.out));
    EXPECT_NE(toml.out.find("kernel = \"" KVMRUN_SOURCE_DIR "/build/test-guest/vmlinuz\""),
              std::string::npos)
        << toml.out;
    // The JSON dump of the one is the other's definition too.
    const auto as_json = RunKvmrun({"run", std::string(dir) + ".toml", "--dump-config=json"});
    ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
    Scratch s;
    const auto again = RunKvmrun({"run", s.File("dumped.json", as_json.out), "--dump-config"});
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(Body(again.out), Body(toml.out));
  }
}

// What --dump-config prints is a VM file that gives the same definition again.
TEST(VmFileTest, DumpIsAVmFile) {
  Scratch s;
  const std::string file = s.File("vm.toml",
                                  "os = \"windows-11\"\nname = \"w\"\nnet = true\n"
                                  "append = \"a \\\"quoted\\\" \\\\ word\"\nagent = false\n");
  const auto first = RunKvmrun({"run", file, "--dump-config"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.out.find("no-agent = true"), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("# accel = \"auto\""), std::string::npos) << "defaults: " << first.out;
  const auto second = RunKvmrun({"run", s.File("dumped.toml", first.out), "--dump-config"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(Body(first.out), Body(second.out));
  const auto bad = RunKvmrun({"run", file, "--dump-config=yaml"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--dump-config: invalid value 'yaml'; valid: toml, json"),
            std::string::npos)
      << bad.err;
}

// boot-test and timecheck read VM files too, against their own options.
TEST(VmFileTest, BootTestAndTimecheckTakeVmFiles) {
  Scratch s;
  const std::string kernel = s.File("vmlinuz", "k");
  const std::string boot = s.File("boot.toml",
                                  "kernel = \"vmlinuz\"\nexpect = \"login:\"\n"
                                  "timeout = 30\nmemory = \"1G\"\n");
  auto r = RunKvmrun({"boot-test", boot, "--timeout", "45", "--dump-config"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("kernel = \"" + kernel + "\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("timeout = 45"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("expect = \"login:\""), std::string::npos) << r.out;
  // A key of `run` that boot-test has not: an error naming boot-test.
  const std::string run_only = s.File("run.toml", "expect = \"x\"\nforward = [\"tcp:1:2\"]\n");
  r = RunKvmrun({"boot-test", run_only, "--kernel", kernel});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("kvmrun boot-test: " + run_only +
                            ":2: forward: unknown key (not an option of kvmrun boot-test)",
                        0),
            0u)
      << r.err;
  const std::string wall = s.File("wall.json",
                                  "{\"mode\": \"wall\", \"stall\": \"qmp\", "
                                  "\"os\": \"linux\", \"stalls\": 2}");
  r = RunKvmrun({"timecheck", wall, "--dump-config=json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"stalls\": 2"), std::string::npos) << r.out;
  const std::string bad = s.File("bad.toml", "os = \"linux\"\nstall = \"nap\"\n");
  r = RunKvmrun({"timecheck", bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("kvmrun timecheck: " + bad + ":2: stall: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace kvmrun
