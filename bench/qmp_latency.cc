// Round-trip latency of `query-version` against a real QEMU over a Unix socket: kvmrun's
// QmpClient against a minimal blocking raw-socket client written for this benchmark, in the
// same run, on the same QEMU, in alternating sessions. Prints p50/p99 and the ratio.
//   qmp_latency [--qemu PATH] [--rounds N]
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kvmrun/qmp_client.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string FindQemu(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--qemu") return argv[i + 1];
  }
  if (const char* env = std::getenv("KVMRUN_QEMU")) return env;
  return "qemu-system-x86_64";
}

int Rounds(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--rounds") return std::max(100, std::atoi(argv[i + 1]));
  }
  return 5000;
}

// The simplest correct blocking QMP client: one write, read until CRLF.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error("raw connect failed");
    }
    ReadMessage();  // greeting
    RoundTrip("{\"execute\":\"qmp_capabilities\"}\r\n");
  }
  ~RawClient() { close(fd_); }

  std::string RoundTrip(const std::string& command) {
    if (write(fd_, command.data(), command.size()) != static_cast<ssize_t>(command.size())) {
      throw std::runtime_error("raw write failed");
    }
    return ReadMessage();
  }

 private:
  std::string ReadMessage() {
    while (true) {
      const auto end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        std::string message = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return message;
      }
      char chunk[65536];
      const ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n <= 0) throw std::runtime_error("raw read failed");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  int fd_ = -1;
  std::string buffer_;
};

struct Stats {
  double p50_us, p99_us, per_second;
};

Stats Summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  return {us[us.size() / 2], us[us.size() * 99 / 100], 1e6 * static_cast<double>(us.size()) / sum};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string qemu = FindQemu(argc, argv);
  const int rounds = Rounds(argc, argv);
  char dir_template[] = "/tmp/kvmrun-bench-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string socket_path = dir + "/qmp.sock";
  const pid_t pid = fork();
  if (pid == 0) {
    const int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    execlp(qemu.c_str(), qemu.c_str(), "-S", "-nodefaults", "-display", "none", "-accel", "tcg",
           "-chardev", ("socket,id=qmp,path=" + socket_path + ",server=on,wait=off").c_str(),
           "-mon", "chardev=qmp,mode=control", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  for (int i = 0; i < 2000 && !std::filesystem::exists(socket_path); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }

  std::vector<double> raw_us, kvmrun_us;
  // Both clients send an id: QEMU takes about 20 us longer to answer a command that carries
  // one (measured here), and a client that correlates replies needs it.
  const std::string query = "{\"execute\":\"query-version\",\"id\":1}\r\n";
  try {
    // Alternate sessions so both clients see the same machine conditions.
    for (int session = 0; session < 6; ++session) {
      if (session % 2 == 0) {
        RawClient raw(socket_path);
        for (int i = 0; i < rounds / 3; ++i) {
          const auto start = Clock::now();
          const std::string reply = raw.RoundTrip(query);
          raw_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
          if (reply.find("\"return\"") == std::string::npos) throw std::runtime_error(reply);
        }
      } else {
        kvmrun::QmpClient client(kvmrun::ConnectQmpSocket(socket_path, std::chrono::seconds(5)));
        for (int i = 0; i < rounds / 3; ++i) {
          const auto start = Clock::now();
          const nlohmann::json reply = client.Execute("query-version");
          kvmrun_us.push_back(
              std::chrono::duration<double, std::micro>(Clock::now() - start).count());
          if (!reply.contains("qemu")) throw std::runtime_error(reply.dump());
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qmp_latency: %s\n", e.what());
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    std::filesystem::remove_all(dir);
    return 1;
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  std::filesystem::remove_all(dir);

  const Stats raw = Summarize(raw_us);
  const Stats ours = Summarize(kvmrun_us);
  std::printf("query-version round trips over a Unix socket, %zu per client (%s, TCG, paused)\n",
              raw_us.size(), qemu.c_str());
  std::printf("%-22s %10s %10s %14s\n", "client", "p50 (us)", "p99 (us)", "round trips/s");
  std::printf("%-22s %10.1f %10.1f %14.0f\n", "raw blocking socket", raw.p50_us, raw.p99_us,
              raw.per_second);
  std::printf("%-22s %10.1f %10.1f %14.0f\n", "kvmrun QmpClient", ours.p50_us, ours.p99_us,
              ours.per_second);
  std::printf("ratio kvmrun/raw: p50 %.2fx, p99 %.2fx (target: p50 <= 1.20x, > 10000/s)\n",
              ours.p50_us / raw.p50_us, ours.p99_us / raw.p99_us);
  return 0;
}
