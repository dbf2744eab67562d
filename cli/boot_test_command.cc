// kvmrun boot-test: boot a kernel (or several) and pass when the console says so. For CI.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/vm_file.h"
#include "cli/vm_options.h"
#include "core/safe_text.h"
#include "io/safe_file.h"
#include "kvmrun/boot_case.h"
#include "kvmrun/boot_matrix.h"
#include "kvmrun/boot_report.h"
#include "kvmrun/error.h"
#include "kvmrun/junit.h"
#include "kvmrun/qmp_codec.h"

namespace kvmrun::cli {
namespace {

constexpr std::size_t kFailureContextLines = 15;

po::options_description BootTestOptionsDescription() {
  po::options_description options("Options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("expect", po::value<std::string>()->value_name("REGEX"),
       "pass when a console line matches (RE2 syntax)")
      ("fail", po::value<std::vector<std::string>>()->value_name("REGEX"),
       "fail when a console line matches this first (repeatable); kernel panics always fail")
      ("run", po::value<std::vector<std::string>>()->value_name("CMD"),
       "once --expect matched, run CMD in the guest (its sh -c, through the guest agent:\n"
       "the guest needs qemu-guest-agent); a non-zero exit fails the case (repeatable, in\n"
       "order; the output goes to the console log and the JUnit report)")
      ("timeout", po::value<double>()->default_value(60)->value_name("S"),
       "seconds the whole case may take under KVM, --run commands included")
      ("tcg-factor", po::value<double>()->default_value(10)->value_name("F"),
       "under TCG the timeout is multiplied by F")
      ("junit", po::value<std::string>()->value_name("FILE"), "write a JUnit XML report")
      ("console-log", po::value<std::string>()->value_name("FILE"),
       "write the console to PATH (with --cases: a directory of NAME.log files, NAME made\n"
       "safe for a file name)")
      ("cases", po::value<std::string>()->value_name("FILE"),
       "a JSON array of cases ({\"name\", \"kernel\", \"initrd\", \"append\", \"disk\", "
       "\"expect\", \"fail\", \"run\", \"timeout\", \"os\", \"memory\"}); options give the "
       "defaults")
      ("jobs,j", po::value<int>()->default_value(1)->value_name("N"), "cases to run at once")
      ("snapshot-at", po::value<std::string>()->value_name("REGEX"),
       "boot once (the first case's VM), save it at the first console line matching REGEX,\n"
       "and run every case from a restore of it, its clock set through the agent: the\n"
       "cases share that VM and differ in --expect, --fail and --run, whose patterns are\n"
       "also looked for in what the console printed before the save")
      ("name", po::value<std::string>()->default_value("boot")->value_name("NAME"),
       "the case name in reports")
      ("list", "print the suite's case names (a matrix expanded; with --shard, that shard's),\n"
               "one per line, and exit")
      ("json", "with --list: a JSON array of {name, shard}")
      ("shard", po::value<std::string>()->value_name("I/N|auto"),
       "run shard I of N (1-based) of the suite: a case's shard is a hash of its name, so it\n"
       "keeps it when cases are added. auto: from Slurm's array, a Kubernetes Indexed Job\n"
       "(with --shard-count) or GitLab's parallel: (docs/scale-out.md)")
      ("shard-count", po::value<int>()->value_name("N"),
       "with --shard auto: N shards, where the engine does not say (Kubernetes)")
      ("results", po::value<std::string>()->value_name("DIR"),
       "write DIR/shard-I-of-N/: results.json, junit.xml and console/NAME.log, for\n"
       "'kvmrun report merge'");
  // clang-format on
  AddGuestOptions(options);
  AddHardwareOptions(options);
  AddPayloadOptions(options, true);
  AddVmFileOptions(options);
  return options;
}

// The case the command-line options describe; also the defaults for each entry of --cases.
BootCase CaseFromOptions(const po::variables_map& vm) {
  BootCase c;
  ApplyGuestOptions(vm, c.spec);
  ApplyHardwareOptions(vm, c.spec);
  ApplyPayloadOptions(vm, c.spec, true);
  if (vm.count("expect")) c.expect = vm["expect"].as<std::string>();
  if (vm.count("fail")) c.fail = vm["fail"].as<std::vector<std::string>>();
  if (vm.count("run")) {
    for (const std::string& command : vm["run"].as<std::vector<std::string>>()) {
      c.run.push_back({"sh", "-c", command});
    }
  }
  c.timeout = PositiveSeconds(vm["timeout"].as<double>(), "--timeout");
  c.name = vm["name"].as<std::string>();
  c.spec.name = "kvmrun-" + c.name;
  return c;
}

// --cases FILE, read (a regular file of at most 4 MiB) and handed to the library with the
// file's directory, which its relative paths are relative to; errors name the file.
constexpr std::uint64_t kMaxCasesFileBytes = 4u << 20;

std::vector<BootCase> CasesFromFile(const std::string& path, const BootCase& defaults) {
  const std::string where = "--cases '" + path + "': ";
  std::string text;
  try {
    text = ReadRegularFile(path, kMaxCasesFileBytes, FinalLink::kFollow);
  } catch (const std::exception& e) {
    throw UsageError(where + "not a readable file (" + e.what() + ")");
  }
  std::vector<BootCase> cases;
  try {
    cases = BootCasesFromJson(ParseBoundedJson(text), defaults,
                              std::filesystem::absolute(path).parent_path().string());
  } catch (const UsageError& e) {
    throw UsageError(where + e.what());
  } catch (const std::exception& e) {  // malformed, or nested too deep
    throw UsageError(where + "not JSON (" + e.what() + ")");
  }
  try {
    ValidateBootCaseNames(cases);
    for (const BootCase& c : cases) ValidateBootCase(c);
  } catch (const UsageError& e) {
    throw UsageError(where + e.what());
  }
  return cases;
}

struct BootTestRequest {
  std::vector<std::string> suite;  // every case's name, this shard's or not
  Shard shard;
  std::vector<BootCase> cases;  // this shard's
  int jobs = 1;
  BootTestOptions options;
};

Shard ShardFrom(const po::variables_map& vm) {
  if (!vm.count("shard")) {
    if (vm.count("shard-count")) throw UsageError("--shard-count goes with --shard auto");
    return {};
  }
  const std::string text = vm["shard"].as<std::string>();
  if (text != "auto") {
    if (vm.count("shard-count")) throw UsageError("--shard-count goes with --shard auto");
    return ParseShard(text, "--shard");
  }
  std::optional<int> count;
  if (vm.count("shard-count")) count = vm["shard-count"].as<int>();
  return ShardFromEnvironment([](const char* name) { return std::getenv(name); }, count);
}

// Everything the command line and the cases file ask for, checked before anything runs.
BootTestRequest RequestFrom(const po::variables_map& vm) {
  BootTestRequest request;
  const BootCase defaults = CaseFromOptions(vm);
  if (vm.count("cases")) {
    request.cases = CasesFromFile(vm["cases"].as<std::string>(), defaults);
  } else {
    request.cases = {defaults};
    ValidateBootCaseNames(request.cases);
    ValidateBootCase(defaults);
  }
  if (vm.count("snapshot-at")) {
    try {
      ValidateOneVmForSuite(request.cases);
    } catch (const UsageError& e) {
      throw UsageError(std::string("--snapshot-at: ") + e.what());
    }
  }
  request.shard = ShardFrom(vm);
  std::vector<BootCase> mine;
  for (BootCase& c : request.cases) {
    request.suite.push_back(c.name);
    if (ShardOfCase(c.name, request.shard.count) == request.shard.index) {
      mine.push_back(std::move(c));
    }
  }
  request.cases = std::move(mine);
  request.jobs = vm["jobs"].as<int>();
  request.options.tcg_factor = vm["tcg-factor"].as<double>();
  ValidateBootTestOptions(request.jobs, request.options);
  return request;
}

// The last `count` lines of `text`, indented.
std::string LastLines(const std::string& text, std::size_t count) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    if (lines.size() > count) lines.erase(lines.begin());
  }
  std::string out;
  for (const std::string& line : lines) out += "    " + line + "\n";
  return out;
}

// A private directory for the suite's snapshot (and its disk overlays), removed at the end.
class SnapshotDir {
 public:
  SnapshotDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/kvmrun-boot-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      throw Error("--snapshot-at: cannot create a directory for the snapshot: " +
                  std::string(std::strerror(errno)));
    }
    dir_ = pattern;
  }
  ~SnapshotDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SnapshotDir(const SnapshotDir&) = delete;
  SnapshotDir& operator=(const SnapshotDir&) = delete;
  std::string file() const { return dir_ + "/boot.kvmrun"; }

 private:
  std::string dir_;
};

JunitReport ShardJunit(const BootTestRequest& request, const std::string& started_at) {
  return {"kvmrun boot-test shard " + ToString(request.shard), started_at, HostName()};
}

bool SameDisks(const std::vector<DiskSpec>& a, const std::vector<DiskSpec>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const DiskSpec& x, const DiskSpec& y) { return x.path == y.path; });
}

}  // namespace

std::vector<BootCase> ParseBootTestArgs(const Args& args) {
  const po::options_description options = BootTestOptionsDescription();
  const VmCommandLine command_line = ParseVmCommandLine(args, options, "boot-test");
  return FromVmCommandLine(command_line, RequestFrom).cases;
}

namespace {

int BootTestWith(const po::variables_map& vm, const VmCommandLine& command_line,
                 const po::options_description& options) {
  if (vm.count("help")) {
    std::cout << HelpText(
        "kvmrun boot-test --kernel K [--initrd I] [--append A] --expect REGEX [--fail REGEX]...\n"
        "                        [--timeout S] [--junit FILE] [--console-log FILE]\n"
        "       kvmrun boot-test --cases cases.json [--jobs N] [--junit FILE] [defaults...]",
        "Boots a guest under its clock policy (verified, as 'kvmrun run' does) and waits for a\n"
        "console line matching --expect. Fails on a --fail match, a kernel panic, QEMU exiting\n"
        "or the timeout, then powers the guest off. The timeout is for KVM; under TCG it is\n"
        "multiplied by --tcg-factor (printed). SIGINT/SIGTERM stop the running cases and skip\n"
        "the rest; the report is still written. Exit 0 when every case passed, 1 otherwise,\n"
        "2 on bad usage. The last line is 'N passed, N failed'.\n\n"
        "Examples:\n"
        "  kvmrun boot-test --kernel bzImage --initrd initrd --append 'console=ttyS0 panic=-1' \\\n"
        "                   --expect 'login:' --junit boot.xml\n"
        "  kvmrun boot-test --kernel bzImage --initrd initrd --share . --expect 'login:' \\\n"
        "                   --run 'cd /mnt/share0 && ./run-tests' --junit boot.xml\n"
        "  kvmrun boot-test --cases cases.json --jobs 4 --junit boot.xml",
        options);
    return kExitOk;
  }
  BootTestRequest request = RequestFrom(vm);
  if (DumpConfigIfAsked(command_line, options, std::cout)) return kExitOk;
  const std::vector<BootCase>& cases = request.cases;
  BootTestOptions& run = request.options;
  if (vm.count("list")) {
    nlohmann::json list = nlohmann::json::array();
    for (const BootCase& c : cases) {
      if (!vm.count("json")) std::cout << c.name << "\n";
      list.push_back({{"name", c.name}, {"shard", ToString(request.shard)}});
    }
    if (vm.count("json")) std::cout << DumpJson(list, 2) << "\n";
    return kExitOk;
  }
  if (vm.count("json")) throw UsageError("--json goes with --list");
  std::string shard_dir;
  if (vm.count("results")) {
    shard_dir = PrepareShardDir(vm["results"].as<std::string>(), request.shard);
  }
  std::string console_path;
  if (vm.count("console-log")) {
    console_path = vm["console-log"].as<std::string>();
    if (cases.size() > 1 && mkdir(console_path.c_str(), 0755) != 0 && errno != EEXIST) {
      throw UsageError("--console-log '" + console_path +
                       "': cannot create the directory: " + std::strerror(errno));
    }
  }

  std::mutex print;
  bool noticed = false;
  run.vm.on_notice = [&](std::string_view notice) {
    std::lock_guard lock(print);
    if (!noticed) std::cerr << "kvmrun: " << notice << std::endl;
    noticed = true;
  };
  run.on_result = [&](const BootCaseResult& r) {
    std::lock_guard lock(print);
    std::cout << (r.passed() ? "PASS " : "FAIL ") << SafeText(r.name) << " ("
              << SecondsText(r.elapsed) << ", " << ToString(r.accel) << ", timeout "
              << SecondsText(r.timeout) << "): " << SafeText(r.message) << std::endl;
    if (!r.passed() && !r.console.empty()) {
      std::cout << "  last console lines:\n"
                << SafeText(LastLines(r.console, kFailureContextLines), KeepLayout::kNewlines);
    }
    // One case: its steps' output here (stdout to stdout, stderr to stderr), escaped.
    if (cases.size() != 1) return;
    for (std::size_t i = 0; i < r.steps.size(); ++i) {
      const BootStepResult& step = r.steps[i];
      std::cout << "--- step " << i + 1 << ": " << SafeExcerpt(step.command()) << " ("
                << SafeText(step.status()) << ")\n"
                << SafeText(step.out, KeepLayout::kNewlines);
      if (!step.out.empty() && step.out.back() != '\n') std::cout << "\n";
      std::cout << std::flush;
      std::cerr << SafeText(step.err, KeepLayout::kNewlines) << std::flush;
    }
  };
  // SIGINT/SIGTERM end the running cases (their VMs stopped) and skip the rest.
  const auto stop = StopRequests::ForSignals({SIGINT, SIGTERM, SIGHUP});
  run.stop = stop.get();
  const std::string started_at = UtcTimestamp();
  if (cases.empty()) {
    // A shard that got no case of a small suite: it reports that, so the merge sees it ran.
    std::cout << "kvmrun boot-test: shard " << ToString(request.shard) << " has none of the "
              << request.suite.size() << " case(s)" << std::endl;
    if (!shard_dir.empty())
      WriteShardResults(shard_dir, request.suite, request.shard, {},
                        ShardJunit(request, started_at));
    std::cout << "0 passed, 0 failed" << std::endl;
    return kExitOk;
  }
  std::cout << "kvmrun boot-test: " << cases.size() << " case(s)"
            << (request.shard.count > 1 ? " (shard " + ToString(request.shard) + " of " +
                                              std::to_string(request.suite.size()) + ")"
                                        : "")
            << ", " << request.jobs << " at a time; timeout " << SecondsText(cases.front().timeout)
            << " under KVM, x" << run.tcg_factor << " under TCG" << std::endl;

  std::optional<SnapshotDir> snapshot_dir;
  if (vm.count("snapshot-at")) {
    snapshot_dir.emplace();
    const BootSnapshot saved = SaveBootSnapshot(cases.front(), vm["snapshot-at"].as<std::string>(),
                                                snapshot_dir->file(), run);
    std::cout << "kvmrun boot-test: booted in " << SecondsText(saved.boot) << ", saved at '"
              << SafeText(saved.line) << "' in " << SecondsText(saved.save)
              << "; every case restores that" << std::endl;
    const std::vector<DiskSpec> booted_disks = cases.front().spec.disks;
    for (BootCase& c : request.cases) {
      c.spec.restore_from = saved.file;
      c.console_before = saved.console;
      // The saved VM wrote to overlays of these disks; a case with others is refused.
      if (SameDisks(c.spec.disks, booted_disks)) c.spec.disks = saved.disks;
    }
  }
  const std::vector<BootCaseResult> results = RunBootCases(cases, request.jobs, run);
  std::size_t passed = 0;
  for (const BootCaseResult& r : results) {
    passed += r.passed();
    if (!console_path.empty()) {
      const std::string file =
          cases.size() > 1 ? console_path + "/" + BootCaseFileName(r.name) + ".log" : console_path;
      WriteTextFile(file, r.console, "--console-log");
    }
  }
  if (vm.count("junit")) {
    WriteTextFile(vm["junit"].as<std::string>(),
                  JunitXml(results, {"kvmrun boot-test", started_at, HostName()}), "--junit");
  }
  if (!shard_dir.empty()) {
    WriteShardResults(shard_dir, request.suite, request.shard, results,
                      ShardJunit(request, started_at));
  }
  std::cout << passed << " passed, " << results.size() - passed << " failed";
  if (const auto reason = stop->Take()) std::cout << " (interrupted by " << *reason << ")";
  std::cout << std::endl;
  return passed == results.size() ? kExitOk : kExitFailure;
}

}  // namespace

int BootTestCommand(const Args& args) {
  const po::options_description options = BootTestOptionsDescription();
  const VmCommandLine command_line = ParseVmCommandLine(args, options, "boot-test");
  return FromVmCommandLine(command_line, [&](const po::variables_map& vm) {
    return BootTestWith(vm, command_line, options);
  });
}

}  // namespace kvmrun::cli
