// Boot once, restore per test: what a snapshot buys, measured side by side in one run on the
// test guest (held running by kvmrun.hold, so a restore has a live guest to come back to).
//   cold boot        Vm::Start + Continue until the console says KVMRUN-GUEST-HOLDING
//   save             Vm::SaveSnapshot of that guest: time and file size
//   restore          Vm::Start from the file (-incoming, clocks verified, checksum checked)
//                    + Continue: the guest runs again
//   restore + clock  the same, then the guest's clock set through its agent (it is as old
//                    as the snapshot)
//   bare -incoming   the same QEMU command line without kvmrun: spawn, QMP, wait for the
//                    load, cont
//   boot-test suite  `kvmrun boot-test` of 10 cases with a run step each, cold and with
//                    --snapshot-at, --jobs 1 and 2
// Prints a table of medians and ratios and writes JSON; asserts nothing.
//   snapshot_bench --guest DIR --kvmrun PATH [--runs N] [--suites off] [--out FILE]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_stats.h"
#include "io/unique_fd.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/qemu_probe.h"
#include "kvmrun/vm.h"
#include "launcher/qemu_install.h"
#include "launcher/run_capture.h"
#include "launcher/runtime_dir.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using bench::Clock;
using bench::MsSince;
using bench::Stats;
using bench::Summarize;
using Json = nlohmann::json;

constexpr char kHolding[] = "KVMRUN-GUEST-HOLDING";
constexpr char kAppend[] = "console=ttyS0 quiet panic=-1 kvmrun.hold";

struct Config {
  std::string guest_dir;
  std::string kvmrun;
  std::string out;
  int runs = 5;
  bool suites = true;
};

VmSpec Spec(const Config& c) {
  VmSpec spec;
  spec.os = GuestOs::kLinux;
  spec.accel = AccelRequest::kTcg;
  spec.kernel = c.guest_dir + "/vmlinuz";
  spec.initrd = c.guest_dir + "/initramfs.cpio";
  spec.append = kAppend;
  spec.no_reboot = true;
  return spec;
}

// Boots to the held state; the VM is returned running.
std::unique_ptr<Vm> Boot(const Config& c, double* ms) {
  const auto start = Clock::now();
  auto vm = Vm::Start(Spec(c));
  vm->Continue();
  if (vm->WaitForConsole(ConsolePattern::Literal(kHolding), 300s).outcome !=
      ConsoleMatch::Outcome::kMatched) {
    throw Error("the test guest did not reach " + std::string(kHolding));
  }
  *ms = MsSince(start);
  return vm;
}

// The restored VM's command line as bare QEMU runs it: kvmrun's, with its runtime directory
// swapped for `dir` (the agent's socket is there).
double BareIncoming(const std::vector<std::string>& argv, const std::string& from_dir,
                    const std::string& to_dir, const std::string& file, ProcessRunner& runner) {
  std::vector<std::string> args(argv.begin() + 1, argv.end());
  for (std::string& arg : args) {
    for (std::size_t at; (at = arg.find(from_dir)) != std::string::npos;) {
      arg.replace(at, from_dir.size(), to_dir);
    }
  }
  auto [qmp_ours, qmp_theirs] = MakeSocketPair();
  auto [console_ours, console_theirs] = MakeSocketPair();
  UniqueFd state(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  lseek(state.get(), static_cast<off_t>(kSnapshotHeaderBytes), SEEK_SET);
  SpawnRequest request = QemuSpawnRequest(argv[0], args);
  request.pass_fds = {qmp_theirs.get(), console_theirs.get(), state.get()};
  const auto start = Clock::now();
  auto qemu = runner.Spawn(request);
  qmp_theirs.Reset();
  console_theirs.Reset();
  state.Reset();
  QmpClient qmp(AdoptQmpSocket(qmp_ours.Release()));
  while (qmp.Execute("query-status").value("status", "") == "inmigrate") {
    std::this_thread::sleep_for(5ms);
  }
  qmp.Execute("cont");
  const double ms = MsSince(start);
  qmp.Execute("quit");
  qemu->Wait(10s);
  return ms;
}

// `kvmrun boot-test` of `cases`, its wall time in ms; Error unless every case passed.
double Suite(const Config& c, const std::string& cases, bool snapshot, int jobs,
             ProcessRunner& runner) {
  SpawnRequest request;
  request.executable = c.kvmrun;
  request.argv = {c.kvmrun,   "boot-test",
                  "--accel",  "tcg",
                  "--kernel", c.guest_dir + "/vmlinuz",
                  "--initrd", c.guest_dir + "/initramfs.cpio",
                  "--append", kAppend,
                  "--expect", "KVMRUN-GUEST-READY",
                  "--cases",  cases,
                  "--jobs",   std::to_string(jobs)};
  if (snapshot) request.argv.insert(request.argv.end(), {"--snapshot-at", kHolding});
  const auto start = Clock::now();
  const CapturedRun run = RunAndCapture(runner, request, 900s);
  const double ms = MsSince(start);
  if (!run.status.Success()) throw Error("boot-test failed: " + run.out + run.err);
  return ms;
}

std::string F(double v, int digits = 1) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", digits, v);
  return text;
}

int Main(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--guest") {
      c.guest_dir = value;
    } else if (key == "--kvmrun") {
      c.kvmrun = value;
    } else if (key == "--runs") {
      c.runs = std::max(3, std::atoi(value.c_str()));
    } else if (key == "--suites") {
      c.suites = value != "off";
    } else if (key == "--out") {
      c.out = value;
    } else {
      throw UsageError("unknown option '" + key +
                       "'; valid: --guest, --kvmrun, --runs, --suites, --out");
    }
  }
  if (c.guest_dir.empty() || c.kvmrun.empty()) {
    throw UsageError("--guest and --kvmrun are required");
  }
  const auto progress = [](const std::string& what) {
    std::cerr << "snapshot_bench: " << what << std::endl;
  };
  auto runner = MakeProcessRunner();
  RuntimeDir work = RuntimeDir::Create();
  const std::string file = work.path() + "/held.kvmrun";

  progress("cold boots and saves");
  std::vector<double> cold, save, size_mib;
  for (int i = 0; i < c.runs; ++i) {
    double ms = 0;
    auto vm = Boot(c, &ms);
    cold.push_back(ms);
    const SnapshotSaveResult saved = vm->SaveSnapshot(file);
    save.push_back(static_cast<double>(saved.took.count()));
    size_mib.push_back(static_cast<double>(saved.header.state_bytes) / (1 << 20));
    vm->Shutdown(0ms);
  }

  progress("restores: kvmrun, kvmrun with the clock set, bare QEMU -incoming");
  std::vector<double> restore, restore_clock, bare, incoming, offsets;
  std::vector<VmTimings> phases;
  VmSpec spec = Spec(c);
  spec.restore_from = file;
  for (int i = 0; i < c.runs; ++i) {
    auto start = Clock::now();
    auto vm = Vm::Start(spec);
    vm->Continue();
    restore.push_back(MsSince(start));
    incoming.push_back(static_cast<double>(vm->timings().incoming.count()) / 1000);
    phases.push_back(vm->timings());
    const ResyncResult set = ResyncGuestClock(*vm->ConnectAgent(30s));
    restore_clock.push_back(MsSince(start));
    offsets.push_back(static_cast<double>(set.before.offset_ns) / 1e9);
    const std::vector<std::string> argv = vm->argv();
    const std::string dir = vm->runtime_dir();
    vm->Shutdown(0ms);
    RuntimeDir bare_dir = RuntimeDir::Create();
    bare.push_back(BareIncoming(argv, dir, bare_dir.path(), file, *runner));
  }

  progress("boot-test suites of 10 cases, cold and --snapshot-at, --jobs 1 and 2");
  const std::string cases = work.path() + "/cases.json";
  {
    Json list = Json::array();
    for (int i = 0; i < 10; ++i) {
      list.push_back({{"name", "case-" + std::to_string(i)}, {"run", {"test -d /proc/self"}}});
    }
    std::ofstream(cases) << list.dump();
  }
  double suite_cold[3] = {}, suite_warm[3] = {1, 1, 1};
  for (int jobs : {1, 2}) {
    if (!c.suites) break;
    suite_cold[jobs] = Suite(c, cases, false, jobs, *runner);
    suite_warm[jobs] = Suite(c, cases, true, jobs, *runner);
  }

  const auto phase = [&](std::chrono::microseconds VmTimings::*field) {
    std::vector<double> v;
    for (const VmTimings& t : phases) v.push_back(static_cast<double>((t.*field).count()) / 1000);
    return Summarize(v).median;
  };
  const Stats s_cold = Summarize(cold), s_save = Summarize(save), s_size = Summarize(size_mib),
              s_restore = Summarize(restore), s_clock = Summarize(restore_clock),
              s_bare = Summarize(bare), s_incoming = Summarize(incoming),
              s_offset = Summarize(offsets);
  std::cout << "snapshot figures, test guest under TCG, medians of " << c.runs << " runs\n"
            << "  cold boot to " << kHolding << ":  " << F(s_cold.median) << " ms\n"
            << "  save:                    " << F(s_save.median) << " ms, " << F(s_size.median)
            << " MiB\n"
            << "  restore to running:      " << F(s_restore.median) << " ms (QEMU's load "
            << F(s_incoming.median) << " ms) = " << F(s_restore.median / s_cold.median, 3)
            << "x the cold boot (target <= 0.1x)\n"
            << "  restore + clock set:     " << F(s_clock.median) << " ms (offset before "
            << F(s_offset.median, 2) << " s)\n"
            << "  bare QEMU -incoming:     " << F(s_bare.median)
            << " ms; kvmrun = " << F(s_restore.median / s_bare.median, 2)
            << "x bare (target <= 1.1x)\n"
            << "    kvmrun's phases: probe " << F(phase(&VmTimings::probe)) << ", KVM check "
            << F(phase(&VmTimings::kvm_check)) << ", spawn " << F(phase(&VmTimings::spawn))
            << ", QMP ready " << F(phase(&VmTimings::qmp_ready)) << ", load "
            << F(phase(&VmTimings::incoming)) << ", verify " << F(phase(&VmTimings::verify))
            << ", cont " << F(phase(&VmTimings::cont)) << " ms\n"
            << "  boot-test, 10 cases:     target >= 5x faster with --snapshot-at\n";
  for (int jobs : {1, 2}) {
    std::cout << "    --jobs " << jobs << ":  cold " << F(suite_cold[jobs] / 1000, 1)
              << " s, --snapshot-at " << F(suite_warm[jobs] / 1000, 1)
              << " s = " << F(suite_cold[jobs] / suite_warm[jobs], 1) << "x faster\n";
  }
  if (!c.out.empty()) {
    const Json out = {{"runs", c.runs},
                      {"cold_boot_ms", bench::StatsJson(s_cold, "ms")},
                      {"save_ms", bench::StatsJson(s_save, "ms")},
                      {"state_mib", bench::StatsJson(s_size, "MiB")},
                      {"restore_ms", bench::StatsJson(s_restore, "ms")},
                      {"incoming_ms", bench::StatsJson(s_incoming, "ms")},
                      {"restore_and_clock_ms", bench::StatsJson(s_clock, "ms")},
                      {"bare_incoming_ms", bench::StatsJson(s_bare, "ms")},
                      {"suite_jobs1", {{"cold_ms", suite_cold[1]}, {"snapshot_ms", suite_warm[1]}}},
                      {"suite_jobs2", {{"cold_ms", suite_cold[2]}, {"snapshot_ms", suite_warm[2]}}},
                      {"restore_vs_cold", s_restore.median / s_cold.median},
                      {"restore_vs_bare", s_restore.median / s_bare.median},
                      {"suite_speedup_jobs1", suite_cold[1] / suite_warm[1]},
                      {"suite_speedup_jobs2", suite_cold[2] / suite_warm[2]}};
    std::ofstream(c.out) << out.dump(2) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace kvmrun

int main(int argc, char** argv) {
  try {
    return kvmrun::Main(argc, argv);
  } catch (const kvmrun::UsageError& e) {
    std::cerr << "snapshot_bench: " << e.what() << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "snapshot_bench: " << e.what() << std::endl;
    return 1;
  }
}
