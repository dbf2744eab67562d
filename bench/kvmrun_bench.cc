// kvmrun against bare QEMU and libvirt, measured in one run on one machine, reported as
// ratios. Run through bench/run, which builds everything, prepares the test guest and
// libvirt, and writes bench/results.json.
//
//   kvmrun_bench --guest DIR --kvmrun PATH --policy-bench PATH [--runs N] [--libvirt on|off]
//                [--out FILE]
//
// Every figure is the median of several runs, with min and max. Nothing here asserts a time;
// the targets are printed next to the numbers with how far each is met or missed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_stats.h"
#include "io/unique_fd.h"
#include "kvmrun/clock_rendering.h"
#include "kvmrun/error.h"
#include "kvmrun/guest_clock.h"
#include "kvmrun/policy_format.h"
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
using bench::StatsJson;
using bench::Summarize;
using Json = nlohmann::json;

constexpr char kMarker[] = "KVMRUN-GUEST-READY";

struct Config {
  std::string guest_dir;
  std::string kvmrun;
  std::string policy_bench;
  std::string qemu;
  int runs = 5;
  bool libvirt = true;
  // --smoke: one run of everything and 2 guests instead of 20, to prove the program runs (CI's
  // bench_programs_run); its figures mean nothing.
  bool smoke = false;
  std::string out;
  Accel accel = Accel::kTcg;
  std::string cpu_model = "max";
};

std::string Kernel(const Config& c) { return c.guest_dir + "/vmlinuz"; }
std::string Initrd(const Config& c) { return c.guest_dir + "/initramfs.cpio"; }
constexpr char kAppend[] = "console=ttyS0 quiet panic=-1";

// The VM every stack runs: the test guest, the Linux clock policy as rendered for this QEMU.
std::vector<std::string> BareArgs(const Config& c, bool paused) {
  auto runner = MakeProcessRunner();
  const QemuCapabilities caps = ProbeQemuCached(c.qemu, *runner, ProbeCache()).caps;
  const ClockRendering clock = RenderClock(MakeClockPolicy(GuestOs::kLinux), caps, c.accel);
  std::vector<std::string> args = {"-nodefaults", "-no-user-config",
                                   "-display",    "none",
                                   "-accel",      std::string(ToString(c.accel)),
                                   "-m",          "512",
                                   "-smp",        "1"};
  if (paused) args.push_back("-S");
  const auto full = ClockArgv(clock, c.cpu_model);
  args.insert(args.end(), full.begin(), full.end());
  if (clock.cpu_features.empty()) args.insert(args.end(), {"-cpu", c.cpu_model});
  args.insert(args.end(),
              {"-kernel", Kernel(c), "-initrd", Initrd(c), "-append", kAppend, "-no-reboot"});
  return args;
}

// ---- Time to QMP-ready -------------------------------------------------------------------

// Bare QEMU and the smallest QMP client that works: read the greeting, negotiate, read the
// reply. Everything on the socketpair, as kvmrun does it.
std::string ReadLine(int fd, std::string& buffer) {
  while (buffer.find('\n') == std::string::npos) {
    char chunk[65536];
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) throw Error("bare QEMU closed its QMP socket");
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  const auto end = buffer.find('\n');
  std::string line = buffer.substr(0, end);
  buffer.erase(0, end + 1);
  return line;
}

double BareQmpReady(const Config& c, ProcessRunner& runner) {
  auto [ours, theirs] = MakeSocketPair();
  std::vector<std::string> args = BareArgs(c, true);
  args.insert(args.end(),
              {"-chardev", "socket,id=qmp,fd=" + std::to_string(SpawnRequest::kFirstPassedFd),
               "-mon", "chardev=qmp,mode=control"});
  SpawnRequest request = QemuSpawnRequest(c.qemu, args);
  request.pass_fds = {theirs.get()};
  const auto start = Clock::now();
  auto qemu = runner.Spawn(request);
  theirs.Reset();
  std::string buffer;
  ReadLine(ours.get(), buffer);  // greeting
  const std::string negotiate = "{\"execute\":\"qmp_capabilities\"}\r\n";
  if (write(ours.get(), negotiate.data(), negotiate.size()) < 0) throw Error("write failed");
  ReadLine(ours.get(), buffer);
  const double ms = MsSince(start);
  const std::string quit = "{\"execute\":\"quit\"}\r\n";
  [[maybe_unused]] const ssize_t n = write(ours.get(), quit.data(), quit.size());
  qemu->Wait(5s);
  return ms;
}

VmSpec BenchSpec(const Config& c, VerifyMode verify) {
  VmSpec spec;
  spec.os = GuestOs::kLinux;
  spec.qemu = c.qemu;
  spec.accel = c.accel == Accel::kKvm ? AccelRequest::kKvm : AccelRequest::kTcg;
  spec.cpu_model = c.cpu_model;
  spec.kernel = Kernel(c);
  spec.initrd = Initrd(c);
  spec.append = kAppend;
  spec.no_reboot = true;
  spec.verify = verify;
  return spec;
}

// kvmrun's Vm::Start, the path `kvmrun run` takes (probe and KVM check cached).
double KvmrunQmpReady(const Config& c, VerifyMode verify, VmTimings* timings) {
  const auto start = Clock::now();
  auto vm = Vm::Start(BenchSpec(c, verify));
  const double ms = MsSince(start);
  *timings = vm->timings();
  vm->Shutdown(0ms);
  return ms;
}

std::string Virsh() { return "/usr/bin/virsh"; }

CapturedRun RunVirsh(ProcessRunner& runner, std::vector<std::string> args) {
  SpawnRequest r;
  r.executable = Virsh();
  r.argv = {Virsh(), "-c", "qemu:///system"};
  r.argv.insert(r.argv.end(), args.begin(), args.end());
  return RunAndCapture(runner, r, 60s);
}

std::string DomainXml(const Config& c, const std::string& console_log) {
  std::ostringstream xml;
  xml << "<domain type='" << (c.accel == Accel::kKvm ? "kvm" : "qemu") << "'>\n"
      << "  <name>kvmrun-bench</name>\n  <memory unit='MiB'>512</memory>\n  <vcpu>1</vcpu>\n"
      << "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n"
      << "    <kernel>" << Kernel(c) << "</kernel>\n    <initrd>" << Initrd(c) << "</initrd>\n"
      << "    <cmdline>" << kAppend << "</cmdline>\n  </os>\n  <features><acpi/></features>\n"
      << "  <cpu mode='" << (c.accel == Accel::kKvm ? "host-passthrough" : "maximum") << "'/>\n"
      << LibvirtClockXml(MakeClockPolicy(GuestOs::kLinux))
      << "  <on_reboot>destroy</on_reboot>\n  <devices>\n"
      << "    <emulator>" << c.qemu << "</emulator>\n"
      << "    <serial type='file'><source path='" << console_log
      << "'/><target port='0'/></serial>\n"
      << "    <memballoon model='none'/>\n  </devices>\n</domain>\n";
  return xml.str();
}

// `virsh create --paused`: libvirt returns once QEMU runs and its own QMP session is set up.
double LibvirtQmpReady(const Config& c, ProcessRunner& runner, const std::string& dir) {
  const std::string xml = dir + "/domain.xml";
  std::ofstream(xml) << DomainXml(c, dir + "/console.log");
  const auto start = Clock::now();
  const CapturedRun run = RunVirsh(runner, {"create", "--paused", xml});
  const double ms = MsSince(start);
  RunVirsh(runner, {"destroy", "kvmrun-bench"});
  if (!run.status.Success()) throw Error("virsh create failed: " + run.err);
  return ms;
}

// ---- Time to the guest's marker ------------------------------------------------------------

// Reads `fd` until `marker` shows up; returns false at EOF or the deadline.
bool WaitForMarker(int fd, Clock::time_point deadline) {
  std::string seen;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (poll(&p, 1, static_cast<int>(std::max<long long>(left, 0))) <= 0) continue;
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) return false;
    seen.append(chunk, static_cast<std::size_t>(n));
    if (seen.find(kMarker) != std::string::npos) return true;
    if (seen.size() > 65536) seen.erase(0, seen.size() - 1024);
  }
  return false;
}

double BareMarker(const Config& c, ProcessRunner& runner) {
  auto [out_read, out_write] = MakePipe();
  std::vector<std::string> args = BareArgs(c, false);
  args.insert(args.end(), {"-serial", "stdio"});
  SpawnRequest request = QemuSpawnRequest(c.qemu, args);
  request.stdout_fd = out_write.get();
  const auto start = Clock::now();
  auto qemu = runner.Spawn(request);
  out_write.Reset();
  if (!WaitForMarker(out_read.get(), start + 300s)) throw Error("bare QEMU: no marker");
  const double ms = MsSince(start);
  qemu->Wait(30s);
  return ms;
}

double KvmrunMarker(const Config& c, ProcessRunner& runner) {
  auto [out_read, out_write] = MakePipe();
  SpawnRequest request;
  request.executable = c.kvmrun;
  request.argv = {
      c.kvmrun,   "run",       "--os",     "linux", "--accel",    std::string(ToString(c.accel)),
      "--cpu",    c.cpu_model, "--qemu",   c.qemu,  "--kernel",   Kernel(c),
      "--initrd", Initrd(c),   "--append", kAppend, "--no-reboot"};
  request.stdout_fd = out_write.get();
  const auto start = Clock::now();
  auto kvmrun = runner.Spawn(request);
  out_write.Reset();
  if (!WaitForMarker(out_read.get(), start + 300s)) throw Error("kvmrun run: no marker");
  const double ms = MsSince(start);
  kvmrun->Wait(60s);
  return ms;
}

double LibvirtMarker(const Config& c, ProcessRunner& runner, const std::string& dir) {
  const std::string log = dir + "/console.log";
  const std::string xml = dir + "/domain.xml";
  std::remove(log.c_str());
  std::ofstream(xml) << DomainXml(c, log);
  const auto start = Clock::now();
  const CapturedRun run = RunVirsh(runner, {"create", xml});
  if (!run.status.Success()) throw Error("virsh create failed: " + run.err);
  // libvirt writes the console to a file: look at it every few milliseconds.
  double ms = -1;
  while (MsSince(start) < 300000) {
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find(kMarker) != std::string::npos) {
      ms = MsSince(start);
      break;
    }
    std::this_thread::sleep_for(2ms);
  }
  for (int i = 0; i < 3000; ++i) {  // the guest powers off by itself
    if (RunVirsh(runner, {"domstate", "kvmrun-bench"}).status.code != 0) break;
    std::this_thread::sleep_for(10ms);
  }
  RunVirsh(runner, {"destroy", "kvmrun-bench"});
  if (ms < 0) throw Error("libvirt: no marker");
  return ms;
}

// ---- QMP round trips -----------------------------------------------------------------------

class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw Error("raw connect failed");
    }
    ReadLine(fd_, buffer_);
    RoundTrip("{\"execute\":\"qmp_capabilities\"}\r\n");
  }
  ~RawClient() { close(fd_); }
  std::string RoundTrip(const std::string& command) {
    if (write(fd_, command.data(), command.size()) != static_cast<ssize_t>(command.size())) {
      throw Error("raw write failed");
    }
    return ReadLine(fd_, buffer_);
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

struct RoundTrips {
  Stats raw_us, kvmrun_us;
  double raw_per_s = 0, kvmrun_per_s = 0;
};

double PerSecond(const std::vector<double>& us) {
  double sum = 0;
  for (double v : us) sum += v;
  return sum > 0 ? 1e6 * static_cast<double>(us.size()) / sum : 0;
}

RoundTrips QmpRoundTrips(const Config& c, int per_session) {
  RuntimeDir dir = RuntimeDir::Create();
  const std::string socket_path = dir.path() + "/qmp.sock";
  VmSpec spec = BenchSpec(c, VerifyMode::kOff);
  spec.qmp_socket = socket_path;
  auto vm = Vm::Start(spec);  // paused, with a public QMP socket both clients use in turn
  // Both clients send an id: QEMU takes about 20 us longer to answer a command that carries
  // one (measured here), and a client that correlates replies needs it.
  const std::string query = "{\"execute\":\"query-version\",\"id\":1}\r\n";
  std::vector<double> raw, ours;
  for (int session = 0; session < 6; ++session) {  // alternate: same conditions for both
    if (session % 2 == 0) {
      RawClient client(socket_path);
      for (int i = 0; i < per_session; ++i) {
        const auto start = Clock::now();
        client.RoundTrip(query);
        raw.push_back(MsSince(start) * 1000);
      }
    } else {
      QmpClient client(ConnectQmpSocket(socket_path, 5s));
      for (int i = 0; i < per_session; ++i) {
        const auto start = Clock::now();
        client.Execute("query-version");
        ours.push_back(MsSince(start) * 1000);
      }
    }
  }
  vm->Shutdown(0ms);
  const auto p99 = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() * 99 / 100];
  };
  RoundTrips r{Summarize(raw), Summarize(ours), PerSecond(raw), PerSecond(ours)};
  r.raw_us.max = p99(raw);  // reported as p99: the maximum of thousands says little
  r.kvmrun_us.max = p99(ours);
  return r;
}

// ---- Commands in the guest ------------------------------------------------------------------

// A minimal qemu-ga client, as one would write it by hand: a blocking socket, one JSON line
// out and one in, the same polling of guest-exec-status as kvmrun's (so the comparison is of
// the clients, not of polling policies).
class RawAgentClient {
 public:
  explicit RawAgentClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw Error("raw agent connect failed");
    }
    // Sync: the reply is "\xff" then {"return": id}.
    Send(R"({"execute":"guest-sync-delimited","arguments":{"id":4242}})");
    std::string line;
    do {
      line = ReadLine(fd_, buffer_);
    } while (line.find("4242") == std::string::npos);
  }
  ~RawAgentClient() { close(fd_); }
  // guest-exec of `path` with capture, then status until it exited; returns its exit code.
  int Exec(const std::string& path) {
    const Json started = Command(
        {{"execute", "guest-exec"}, {"arguments", {{"path", path}, {"capture-output", true}}}});
    const Json pid = started["return"]["pid"];
    auto pause = 1ms;
    while (true) {
      const Json status =
          Command({{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}});
      if (status["return"].value("exited", false)) return status["return"].value("exitcode", -1);
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }

 private:
  void Send(const std::string& text) {
    const std::string line = text + "\n";
    if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw Error("raw agent write failed");
    }
  }
  Json Command(const Json& command) {
    Send(command.dump());
    return Json::parse(ReadLine(fd_, buffer_));
  }
  int fd_ = -1;
  std::string buffer_;
};

struct ExecRoundTrips {
  Stats raw_ms, kvmrun_ms;
  double raw_p99 = 0, kvmrun_p99 = 0;
};

// `true` in the test guest through the agent, kvmrun's client against the raw one, in
// alternating sessions over the same socket.
ExecRoundTrips GuestExecRoundTrips(const Config& c, int per_session) {
  VmSpec spec = BenchSpec(c, VerifyMode::kOff);
  spec.append += " kvmrun.hold";
  auto vm = Vm::Start(spec);
  vm->Continue();
  vm->ConnectAgent(std::chrono::minutes(5)).reset();  // the guest has booted and its agent runs
  GuestExecRequest request;
  request.argv = {"true"};
  std::vector<double> raw, ours;
  for (int session = 0; session < 6; ++session) {
    if (session % 2 == 0) {
      RawAgentClient client(vm->agent_socket());
      for (int i = 0; i < per_session; ++i) {
        const auto start = Clock::now();
        client.Exec("true");
        raw.push_back(MsSince(start));
      }
    } else {
      auto agent = vm->ConnectAgent();
      for (int i = 0; i < per_session; ++i) {
        const auto start = Clock::now();
        agent->Exec(request);
        ours.push_back(MsSince(start));
      }
    }
  }
  vm->Shutdown(0ms);
  const auto p99 = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() * 99 / 100];
  };
  ExecRoundTrips r{Summarize(raw), Summarize(ours), p99(raw), p99(ours)};
  r.raw_ms.max = r.raw_p99;  // reported as p99, as for QMP
  r.kvmrun_ms.max = r.kvmrun_p99;
  return r;
}

// The guest-clock rows of `verify` against its device rows (the baseline, same VM, same run),
// and a resync after a QMP pause of 2 s.
struct GuestClockFigures {
  Stats device_rows_ms, guest_rows_ms, guest_rows_connected_ms;
  ResyncResult resync;
};

GuestClockFigures MeasureGuestClockFigures(const Config& c, int runs) {
  VmSpec spec = BenchSpec(c, VerifyMode::kOff);
  spec.append += " kvmrun.hold";
  auto vm = Vm::Start(spec);
  vm->Continue();
  vm->ConnectAgent(std::chrono::minutes(5)).reset();
  const HostClock host = SystemHostClock();
  std::vector<double> device, guest, connected;
  for (int i = 0; i < runs * 4; ++i) {
    auto start = Clock::now();
    const ClockReadback readback = ReadClockState(vm->qmp(), host);
    CompareClock(vm->policy(), vm->rendering(), readback, host);
    device.push_back(MsSince(start));
    start = Clock::now();  // what verify pays: connect, sync, offset and clocksource
    const GuestClockReading reading = ReadGuestClockAt(vm->agent_socket(), true, 60s);
    guest.push_back(MsSince(start));
    if (!reading.offset.value) throw Error("no guest offset: " + reading.offset.error);
    auto agent = vm->ConnectAgent();
    start = Clock::now();  // on a connection already synced
    ReadGuestClock(*agent, true);
    connected.push_back(MsSince(start));
  }
  GuestClockFigures figures{Summarize(device), Summarize(guest), Summarize(connected), {}};
  vm->Pause();
  std::this_thread::sleep_for(2s);
  vm->Resume();
  figures.resync = ResyncGuestClock(*vm->ConnectAgent());
  vm->Shutdown(0ms);
  return figures;
}

// ---- Footprint -----------------------------------------------------------------------------

long VmHwmKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// Runs kvmrun with `args` and `marker` (or until exit), sampling its peak RSS; returns
// {wall ms, peak KiB}.
std::pair<double, long> KvmrunFootprint(const Config& c, ProcessRunner& runner,
                                        const std::vector<std::string>& args, bool stop_at_marker) {
  auto [out_read, out_write] = MakePipe();
  SpawnRequest request;
  request.executable = c.kvmrun;
  request.argv = {c.kvmrun};
  request.argv.insert(request.argv.end(), args.begin(), args.end());
  request.stdout_fd = out_write.get();
  request.extra_env = {"KVMRUN_QEMU=" + c.qemu};
  const auto start = Clock::now();
  auto kvmrun = runner.Spawn(request);
  out_write.Reset();
  long peak = 0;
  std::string seen;
  while (true) {
    peak = std::max(peak, VmHwmKib(kvmrun->pid()));
    pollfd p{out_read.get(), POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char chunk[4096];
      const ssize_t n = read(out_read.get(), chunk, sizeof(chunk));
      if (n <= 0) break;
      seen.append(chunk, static_cast<std::size_t>(n));
      if (stop_at_marker && seen.find("KVMRUN-GUEST-HOLDING") != std::string::npos) {
        peak = std::max(peak, VmHwmKib(kvmrun->pid()));
        kvmrun->Signal(SIGTERM);
        break;
      }
    }
  }
  kvmrun->Wait(60s);
  return {MsSince(start), peak};
}

// ---- Output ----------------------------------------------------------------------------------

std::string F(double v, int digits = 1) {
  char out[32];
  std::snprintf(out, sizeof(out), "%.*f", digits, v);
  return out;
}

std::string Row(const std::string& name, const Stats& s, const std::string& unit,
                const std::string& note = "") {
  char line[256];
  std::snprintf(line, sizeof(line), "  %-34s %9s %9s %9s %-3s %s", name.c_str(),
                F(s.median).c_str(), F(s.min).c_str(), F(s.max).c_str(), unit.c_str(),
                note.c_str());
  return line;
}

std::string Verdict(bool met, const std::string& detail) {
  return std::string(met ? "[target met: " : "[target MISSED: ") + detail + "]";
}

}  // namespace

int Main(int argc, char** argv) {
  Config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--guest")
      c.guest_dir = value;
    else if (key == "--kvmrun")
      c.kvmrun = value;
    else if (key == "--policy-bench")
      c.policy_bench = value;
    else if (key == "--runs")
      c.runs = std::max(3, std::atoi(value.c_str()));
    else if (key == "--smoke")
      c.smoke = value == "on";
    else if (key == "--libvirt")
      c.libvirt = value == "on";
    else if (key == "--out")
      c.out = value;
    else
      throw UsageError("unknown option '" + key + "'");
  }
  if (c.guest_dir.empty() || c.kvmrun.empty())
    throw UsageError("--guest and --kvmrun are required");
  if (c.smoke) c.runs = 1;
  c.qemu = FindQemu("");
  auto runner = MakeProcessRunner();

  // The accelerator present, as kvmrun decides it (the diagnosis is cached).
  {
    RuntimeDir work = RuntimeDir::Create();
    auto host = MakeKvmHost();
    const AccelDecision accel = ChooseAccel(
        AccelRequest::kAuto, DiagnoseKvmForQemu(c.qemu, *host, *runner, ProbeCache(), work.path()));
    c.accel = accel.accel;
    c.cpu_model = accel.cpu_model;
  }
  Json results = {{"machine",
                   {{"cpus", std::thread::hardware_concurrency()},
                    {"qemu", c.qemu},
                    {"accel", ToString(c.accel)}}},
                  {"runs", c.runs}};
  std::vector<std::string> lines;
  const auto say = [&](const std::string& line) { lines.push_back(line); };
  const auto progress = [](const std::string& what) {
    std::cerr << "kvmrun_bench: " << what << std::endl;
  };

  progress("capability probe, cold and cached");
  // Probe: cold, then cached.
  std::vector<double> cold, cached;
  for (int i = 0; i < c.runs; ++i) {
    auto start = Clock::now();
    ProbeQemu(c.qemu, *runner);
    cold.push_back(MsSince(start));
    start = Clock::now();
    ProbeQemuCached(c.qemu, *runner, ProbeCache());
    cached.push_back(MsSince(start));
  }
  const Stats probe_cold = Summarize(cold), probe_cached = Summarize(cached);

  progress("time to QMP-ready: bare QEMU, kvmrun" + std::string(c.libvirt ? ", libvirt" : ""));
  // Time to QMP-ready.
  RuntimeDir libvirt_dir = RuntimeDir::Create();
  chmod(libvirt_dir.path().c_str(), 0755);
  std::vector<double> bare, ours, ours_verified, libvirt, verify_ms;
  std::vector<VmTimings> phases;
  std::string libvirt_skip = c.libvirt ? "" : "disabled (--libvirt off)";
  for (int i = 0; i < c.runs; ++i) {
    bare.push_back(BareQmpReady(c, *runner));
    VmTimings t;
    ours.push_back(KvmrunQmpReady(c, VerifyMode::kOff, &t));
    phases.push_back(t);
    ours_verified.push_back(KvmrunQmpReady(c, VerifyMode::kEnforce, &t));
    verify_ms.push_back(t.verify.count() / 1000.0);
    if (libvirt_skip.empty()) {
      try {
        libvirt.push_back(LibvirtQmpReady(c, *runner, libvirt_dir.path()));
      } catch (const Error& e) {
        libvirt_skip = e.what();
      }
    }
  }
  const Stats qmp_bare = Summarize(bare), qmp_ours = Summarize(ours),
              qmp_verified = Summarize(ours_verified), qmp_libvirt = Summarize(libvirt),
              verify = Summarize(verify_ms);
  const auto phase = [&](std::chrono::microseconds VmTimings::*field) {
    std::vector<double> v;
    for (const VmTimings& t : phases) v.push_back((t.*field).count() / 1000.0);
    return Summarize(v).median;
  };

  progress("time to the guest's marker (boots the test guest under each stack)");
  // Time to the guest's marker.
  std::vector<double> m_bare, m_ours, m_libvirt;
  for (int i = 0; i < (c.smoke ? 1 : std::max(3, c.runs / 2)); ++i) {
    m_bare.push_back(BareMarker(c, *runner));
    m_ours.push_back(KvmrunMarker(c, *runner));
    if (libvirt_skip.empty()) {
      try {
        m_libvirt.push_back(LibvirtMarker(c, *runner, libvirt_dir.path()));
      } catch (const Error& e) {
        libvirt_skip = e.what();
      }
    }
  }
  const Stats marker_bare = Summarize(m_bare), marker_ours = Summarize(m_ours),
              marker_libvirt = Summarize(m_libvirt);

  progress("guest-exec round trips through the agent (boots the test guest)");
  const ExecRoundTrips exec = GuestExecRoundTrips(c, c.smoke ? 4 : 40);
  progress("guest-clock rows and a resync (boots the test guest)");
  const GuestClockFigures clock = MeasureGuestClockFigures(c, c.runs);
  progress("QMP round trips");
  // QMP round trips.
  const RoundTrips rt = QmpRoundTrips(c, c.smoke ? 50 : 1500);

  progress("policy rendering (Google Benchmark)");
  // Policy rendering (Google Benchmark).
  double render_us = -1;
  if (!c.policy_bench.empty()) {
    SpawnRequest r;
    r.executable = c.policy_bench;
    r.argv = {c.policy_bench, "--benchmark_filter=BM_RenderEveryOs/0", "--benchmark_format=json",
              "--benchmark_min_time=0.3"};
    const CapturedRun run = RunAndCapture(*runner, r, 120s);
    try {
      const Json j = Json::parse(run.out);
      // One iteration renders every catalog OS.
      render_us = j["benchmarks"][0]["cpu_time"].get<double>() / 1000.0 /
                  static_cast<double>(GuestOsCatalog().size());
    } catch (const std::exception&) {
    }
  }

  progress("footprint: one guest, then 20 guests from one process");
  // Footprint: the kvmrun CLI while a guest runs; 20 guests from one process.
  const auto [hold_ms, hold_kib] =
      KvmrunFootprint(c, *runner,
                      {"run", "--os", "linux", "--accel", std::string(ToString(c.accel)), "--cpu",
                       c.cpu_model, "--kernel", Kernel(c), "--initrd", Initrd(c), "--append",
                       std::string(kAppend) + " kvmrun.hold", "--grace", "1"},
                      true);
  (void)hold_ms;
  const std::string cases = libvirt_dir.path() + "/cases.json";
  {
    Json list = Json::array();
    for (int i = 0; i < (c.smoke ? 2 : 20); ++i)
      list.push_back({{"name", "guest-" + std::to_string(i)}, {"memory", "256M"}});
    std::ofstream(cases) << list.dump();
  }
  const auto [parallel_ms, parallel_kib] =
      KvmrunFootprint(c, *runner,
                      {"boot-test", "--cases", cases, "--jobs", c.smoke ? "2" : "20", "--accel",
                       std::string(ToString(c.accel)), "--kernel", Kernel(c), "--initrd", Initrd(c),
                       "--append", kAppend, "--expect", kMarker, "--timeout", "60"},
                      false);

  // Report.
  const double overhead_limit = qmp_bare.median * 1.05 + 5;
  say("kvmrun benchmarks: " + std::string(ToString(c.accel)) + ", QEMU " + c.qemu + ", " +
      std::to_string(std::thread::hardware_concurrency()) + " CPUs; median, min, max of " +
      std::to_string(c.runs) + " runs");
  say("");
  say("Time to QMP-ready (test guest, paused)   median       min       max");
  say(Row("bare QEMU + raw QMP handshake", qmp_bare, "ms", "1.00x"));
  say(Row("kvmrun (verification off)", qmp_ours, "ms",
          F(qmp_ours.median / qmp_bare.median, 2) + "x " +
              Verdict(qmp_ours.median <= overhead_limit,
                      "<= 1.05x bare + 5 ms = " + F(overhead_limit) + " ms")));
  say(Row("kvmrun (clocks verified)", qmp_verified, "ms",
          F(qmp_verified.median / qmp_bare.median, 2) + "x"));
  if (libvirt_skip.empty()) {
    say(Row("libvirt (virsh create --paused)", qmp_libvirt, "ms",
            F(qmp_libvirt.median / qmp_bare.median, 2) + "x; kvmrun/libvirt " +
                F(qmp_ours.median / qmp_libvirt.median, 2) + "x " +
                Verdict(qmp_ours.median <= 0.3 * qmp_libvirt.median, "<= 0.3x libvirt")));
  } else {
    say("  libvirt: skipped (" + libvirt_skip + ")");
  }
  say("    kvmrun phases (median ms): probe " + F(phase(&VmTimings::probe), 2) + ", KVM check " +
      F(phase(&VmTimings::kvm_check), 2) + ", spawn " + F(phase(&VmTimings::spawn), 2) +
      ", spawn to QMP ready " + F(phase(&VmTimings::qmp_ready), 2) + ", all of Start " +
      F(phase(&VmTimings::start), 2));
  say(Row("verification on its own", verify, "ms"));
  say("");
  say("Time to guest marker (" + std::string(kMarker) + ", " + std::string(ToString(c.accel)) +
      ")");
  say(Row("bare QEMU", marker_bare, "ms", "1.00x"));
  say(Row("kvmrun run (verified)", marker_ours, "ms",
          F(marker_ours.median / marker_bare.median, 2) + "x"));
  if (libvirt_skip.empty()) {
    say(Row("libvirt (virsh create)", marker_libvirt, "ms",
            F(marker_libvirt.median / marker_bare.median, 2) + "x"));
  }
  say("");
  say("QMP query-version round trip (us)");
  say(Row("raw blocking socket client", rt.raw_us, "us",
          "(max column: p99) " + F(rt.raw_per_s, 0) + "/s"));
  say(Row("kvmrun QmpClient", rt.kvmrun_us, "us",
          "(max column: p99) " + F(rt.kvmrun_per_s, 0) + "/s; p50 " +
              F(rt.kvmrun_us.median / rt.raw_us.median, 2) + "x raw " +
              Verdict(rt.kvmrun_us.median <= 1.2 * rt.raw_us.median, "p50 <= 1.2x raw") + " " +
              Verdict(rt.kvmrun_per_s > 10000, "> 10000/s")));
  say("");
  say("Command in the guest (`true` through the guest agent, ms)");
  say(Row("minimal raw qemu-ga client", exec.raw_ms, "ms", "(max column: p99)"));
  say(Row("kvmrun GuestAgent::Exec", exec.kvmrun_ms, "ms",
          "(max column: p99) p50 " + F(exec.kvmrun_ms.median / exec.raw_ms.median, 2) + "x raw " +
              Verdict(exec.kvmrun_ms.median <= 1.2 * exec.raw_ms.median, "p50 <= 1.2x raw")));
  say("  vs a fresh boot per command (kvmrun run to the guest's marker): " +
      F(marker_ours.median / exec.kvmrun_ms.median, 0) + "x faster per command " +
      Verdict(marker_ours.median >= 50 * exec.kvmrun_ms.median, ">= 50x"));
  say("");
  say("Guest clock in verify (ms; the device rows are the baseline, same VM)");
  say(Row("device rows over QMP", clock.device_rows_ms, "ms", ""));
  say(Row("guest rows: connect, sync, offset, clocksource", clock.guest_rows_ms, "ms",
          F(clock.guest_rows_ms.median / clock.device_rows_ms.median, 1) + "x the device rows"));
  say(Row("guest rows on a synced connection", clock.guest_rows_connected_ms, "ms", ""));
  say("  resync after a 2 s QMP pause: offset " + clock.resync.before.ToString() + " -> " +
      clock.resync.after.ToString() + " in " + F(clock.resync.took.count() / 1000.0) + " ms");
  say("");
  say("Policy render + argv: " + F(render_us, 2) + " us per OS " +
      Verdict(render_us >= 0 && render_us < 50, "< 50 us"));
  say("Probe: cold " + F(probe_cold.median) + " ms, cached " + F(probe_cached.median, 3) + " ms " +
      Verdict(probe_cached.median < 5, "cached < 5 ms"));
  say("Footprint: kvmrun run with a guest running, peak RSS " + F(hold_kib / 1024.0, 2) + " MiB " +
      Verdict(hold_kib > 0 && hold_kib < 8 * 1024, "< 8 MiB"));
  say("           20 guests in parallel from one process (boot-test --jobs 20): " +
      F(parallel_ms / 1000.0) + " s wall, peak RSS " + F(parallel_kib / 1024.0, 2) + " MiB");

  results["qmp_ready_ms"] = {{"bare", StatsJson(qmp_bare, "ms")},
                             {"kvmrun", StatsJson(qmp_ours, "ms")},
                             {"kvmrun_verified", StatsJson(qmp_verified, "ms")},
                             {"ratio_kvmrun_to_bare", qmp_ours.median / qmp_bare.median},
                             {"target_ms", overhead_limit}};
  results["kvmrun_phases_ms"] = {{"probe", phase(&VmTimings::probe)},
                                 {"kvm_check", phase(&VmTimings::kvm_check)},
                                 {"spawn", phase(&VmTimings::spawn)},
                                 {"qmp_ready", phase(&VmTimings::qmp_ready)},
                                 {"start", phase(&VmTimings::start)}};
  results["verify_ms"] = StatsJson(verify, "ms");
  results["marker_ms"] = {{"bare", StatsJson(marker_bare, "ms")},
                          {"kvmrun", StatsJson(marker_ours, "ms")}};
  if (libvirt_skip.empty()) {
    results["qmp_ready_ms"]["libvirt"] = StatsJson(qmp_libvirt, "ms");
    results["qmp_ready_ms"]["ratio_kvmrun_to_libvirt"] = qmp_ours.median / qmp_libvirt.median;
    results["marker_ms"]["libvirt"] = StatsJson(marker_libvirt, "ms");
  } else {
    results["libvirt_skipped"] = libvirt_skip;
  }
  results["qmp_round_trip_us"] = {
      {"raw", {{"p50", rt.raw_us.median}, {"p99", rt.raw_us.max}, {"per_s", rt.raw_per_s}}},
      {"kvmrun",
       {{"p50", rt.kvmrun_us.median}, {"p99", rt.kvmrun_us.max}, {"per_s", rt.kvmrun_per_s}}},
      {"ratio_p50", rt.kvmrun_us.median / rt.raw_us.median}};
  results["guest_exec_ms"] = {
      {"raw", {{"p50", exec.raw_ms.median}, {"p99", exec.raw_p99}}},
      {"kvmrun", {{"p50", exec.kvmrun_ms.median}, {"p99", exec.kvmrun_p99}}},
      {"ratio_p50", exec.kvmrun_ms.median / exec.raw_ms.median},
      {"fresh_boot_per_command_ms", marker_ours.median},
      {"speedup_vs_fresh_boot", marker_ours.median / exec.kvmrun_ms.median}};
  results["guest_clock_ms"] = {
      {"device_rows", StatsJson(clock.device_rows_ms, "ms")},
      {"guest_rows", StatsJson(clock.guest_rows_ms, "ms")},
      {"guest_rows_connected", StatsJson(clock.guest_rows_connected_ms, "ms")},
      {"ratio_guest_to_device", clock.guest_rows_ms.median / clock.device_rows_ms.median},
      {"resync_after_2s_pause", ResyncResultToJson(clock.resync)}};
  results["policy_render_us"] = render_us;
  results["probe_ms"] = {{"cold", StatsJson(probe_cold, "ms")},
                         {"cached", StatsJson(probe_cached, "ms")}};
  results["footprint"] = {{"kvmrun_run_peak_rss_mib", hold_kib / 1024.0},
                          {"parallel_20_wall_s", parallel_ms / 1000.0},
                          {"parallel_20_peak_rss_mib", parallel_kib / 1024.0}};
  results["report"] = lines;
  if (!c.out.empty()) std::ofstream(c.out) << results.dump(2) << "\n";
  for (const std::string& line : lines) std::cout << line << "\n";
  return 0;
}

}  // namespace kvmrun

int main(int argc, char** argv) {
  try {
    return kvmrun::Main(argc, argv);
  } catch (const kvmrun::UsageError& e) {
    std::cerr << "kvmrun_bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kvmrun_bench: " << e.what() << "\n";
    return 1;
  }
}
