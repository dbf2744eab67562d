// Named VMs through the CLI, on the busybox test guest under TCG: run --detach, ps, exec, stop,
// two names at once, a reused name, and a supervisor killed with SIGKILL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "kvmrun/qmp_client.h"
#include "kvmrun/qmp_commands.h"
#include "kvmrun/qmp_transport.h"
#include "tests/support/named_vm_fixture.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class NamedVmTest : public testing::NamedVmFixture {
 protected:
  void TearDown() override {
    if (IsSkipped()) return;
    NamedVmFixture::TearDown();
    EXPECT_TRUE(testing::QemusOfVm(started_.empty() ? "none" : started_[0]).empty());
  }
  nlohmann::json Ps() {
    const auto r = Kvmrun({"ps", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
};

TEST_F(NamedVmTest, DetachPsExecVerifyQmpStopWithTwoNamesAtOnce) {
  const auto a = Detach("alpha");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_NE(a.out.find("VM 'alpha' runs"), std::string::npos) << a.out;
  const auto b = Detach("beta");
  ASSERT_EQ(b.exit_code, 0) << b.err;

  const nlohmann::json ps = Ps();
  ASSERT_EQ(ps.size(), 2u) << ps.dump(2);
  EXPECT_EQ(ps[0]["name"], "alpha");
  EXPECT_EQ(ps[1]["name"], "beta");
  EXPECT_EQ(ps[0]["accel"], "tcg");

  const auto again = Detach("alpha");
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("a VM called 'alpha' is already running"), std::string::npos)
      << again.err;
  started_.pop_back();

  const auto uname = Kvmrun({"exec", "alpha", "--", "uname", "-m"});
  EXPECT_EQ(uname.exit_code, 0) << uname.err;
  EXPECT_EQ(uname.out, "x86_64\n");
  const auto seven = Kvmrun({"exec", "beta", "--", "sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(seven.exit_code, 7);
  EXPECT_EQ(seven.out, "out\n");
  EXPECT_EQ(seven.err, "err\n");
  const auto cat = Kvmrun({"exec", "beta", "--", "cat"}, "through stdin\n");
  EXPECT_EQ(cat.out, "through stdin\n");
  const auto env = Kvmrun(
      {"exec", "alpha", "--env", "GREETING=hi there", "--", "sh", "-c", "echo \"$GREETING\""});
  EXPECT_EQ(env.out, "hi there\n");
  const auto missing = Kvmrun({"exec", "gamma", "--", "true"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no running VM called 'gamma'"), std::string::npos) << missing.err;

  EXPECT_EQ(Kvmrun({"verify", "--qmp-socket", "alpha", "--os", "linux"}).exit_code, 0);
  // --socket: the old name of --qmp-socket, still taken.
  const auto status = Kvmrun({"qmp", "--socket", "beta", "query-status"});
  EXPECT_EQ(nlohmann::json::parse(status.out)["status"], "running") << status.err;

  for (const std::string name : {"alpha", "beta"}) {
    // The test guest ignores the power button but runs qemu-ga: the ladder's agent step powers
    // it off, and stop says so (exit 4), never "stopped" for a VM that was killed.
    const auto stopped = Kvmrun({"stop", name});
    EXPECT_EQ(stopped.exit_code, 4) << stopped.err;
    EXPECT_NE(stopped.err.find("the guest powered off when asked"), std::string::npos)
        << stopped.err;
    EXPECT_TRUE(testing::QemusOfVm(name).empty());
  }
  started_.clear();
  EXPECT_TRUE(Ps().empty());
  EXPECT_TRUE(fs::is_empty(dir_.path() + "/kvmrun"));
}

TEST_F(NamedVmTest, ASupervisorKilledWithSigkillLeavesNoQemuAndNoGhost) {
  ASSERT_EQ(Detach("doomed").exit_code, 0);
  const nlohmann::json ps = Ps();
  ASSERT_EQ(ps.size(), 1u);
  const pid_t supervisor = ps[0]["supervisor_pid"].get<pid_t>();
  const pid_t qemu = ps[0]["qemu_pid"].get<pid_t>();
  ASSERT_GT(supervisor, 0);
  kill(supervisor, SIGKILL);
  for (int i = 0; i < 100 && testing::ProcessExists(qemu); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(testing::ProcessExists(qemu)) << "QEMU outlived its supervisor";
  // QEMU's death signal comes when the supervisor's thread that started it exits; the
  // supervisor's other threads, which hold the VM's lock, may take a moment longer.
  for (int i = 0; i < 100 && !Ps().empty(); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(Ps().empty());
  EXPECT_FALSE(fs::exists(dir_.path() + "/kvmrun/doomed")) << "the dead VM's directory stayed";
  started_.clear();
  // The name is free again.
  ASSERT_EQ(Detach("doomed").exit_code, 0);
  // Stopped before its guest has booted: nothing in it can power off yet, so QEMU is quit, and
  // stop says so (5), never "stopped" as if it had ended cleanly.
  EXPECT_EQ(Kvmrun({"stop", "doomed"}).exit_code, 5);
  started_.clear();
}

TEST_F(NamedVmTest, DetachPrintsTheDisplayAndConsoleAndExecWithoutAnAgentPortSaysSo) {
  std::vector<std::string> args = testing::RunTestGuestArgs("linux", "kvmrun.hold");
  args.insert(args.end(),
              {"--name", "mute", "--detach", "--grace", "1", "--no-agent", "--display", "vnc"});
  started_.push_back("mute");
  const auto detached = Kvmrun(args);
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  // The detached supervisor's stderr goes to its log: what the user needs is in this message.
  EXPECT_NE(detached.out.find("display: vnc 127.0.0.1:59"), std::string::npos) << detached.out;
  EXPECT_NE(detached.out.find("password: "), std::string::npos) << detached.out;
  EXPECT_NE(detached.out.find("kvmrun console mute"), std::string::npos) << detached.out;
  // docs/hardware.md's recovery line, as written there.
  const auto key = Kvmrun({"qmp", "--qmp-socket", "mute", "send-key",
                           R"({"keys": [{"type": "qcode", "data": "ret"}]})"});
  EXPECT_EQ(key.exit_code, 0) << key.err;
  const auto r = Kvmrun({"exec", "mute", "--", "true"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("has no guest agent port"), std::string::npos) << r.err;
}

// A VNC viewer's side of RFB 3.8 on a socket without authentication, up to the server's
// ServerInit, after which QEMU counts the client as connected (VNC_INITIALIZED).
void ShakeHandsAsAViewer(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << path;
  char version[12];
  ASSERT_EQ(recv(fd, version, sizeof(version), MSG_WAITALL), 12);
  ASSERT_EQ(write(fd, "RFB 003.008\n", 12), 12);
  unsigned char count = 0;
  ASSERT_EQ(recv(fd, &count, 1, MSG_WAITALL), 1);
  std::string types(count, '\0');
  ASSERT_EQ(recv(fd, types.data(), count, MSG_WAITALL), count);
  ASSERT_NE(types.find('\x01'), std::string::npos) << "no 'None' security type";
  ASSERT_EQ(write(fd, "\x01", 1), 1);  // None
  char result[4];
  ASSERT_EQ(recv(fd, result, 4, MSG_WAITALL), 4);
  EXPECT_EQ(std::string(result, 4), std::string(4, '\0'));
  ASSERT_EQ(write(fd, "\x01", 1), 1);  // ClientInit: shared
  char server_init[24];
  ASSERT_EQ(recv(fd, server_init, sizeof(server_init), MSG_WAITALL), 24);
  close(fd);
}

// --wait-for-viewer: a detached VM with a display holds its guest paused (QEMU in prelaunch,
// not a console byte) until a VNC viewer has shaken hands, then the guest runs; a VM stopped
// while it waits ends at once, as one that never ran.
TEST_F(NamedVmTest, WaitForViewerHoldsTheGuestUntilAViewerConnects) {
  const auto detached = Detach("watched", {"--display", "vnc=unix", "--wait-for-viewer"});
  ASSERT_EQ(detached.exit_code, 0) << detached.err;
  EXPECT_NE(detached.out.find("the guest is paused until a viewer connects"), std::string::npos)
      << detached.out;
  const std::string marker = "display: vnc unix:";
  const std::size_t at = detached.out.find(marker);
  ASSERT_NE(at, std::string::npos) << detached.out;
  const std::string socket_path = detached.out.substr(
      at + marker.size(), detached.out.find_first_of(" \n", at + marker.size()) - at - marker.size());
  std::this_thread::sleep_for(2s);
  {
    QmpClient qmp(ConnectQmpSocket(VmFile("watched", "qmp.sock"), 5s));
    EXPECT_EQ(QueryStatus(qmp).status, "prelaunch");
  }
  EXPECT_EQ(fs::file_size(VmFile("watched", "console.log")), 0u);
  ShakeHandsAsAViewer(socket_path);
  std::string console;
  for (int i = 0; i < 600 && console.find("KVMRUN-GUEST-HOLDING") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    std::ifstream in(VmFile("watched", "console.log"));
    console.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_NE(console.find("KVMRUN-GUEST-HOLDING"), std::string::npos) << "the guest never ran";
  EXPECT_EQ(Kvmrun({"stop", "watched"}).exit_code, 4);

  ASSERT_EQ(Detach("unwatched", {"--display", "vnc=unix", "--wait-for-viewer"}).exit_code, 0);
  const auto stopped = Kvmrun({"stop", "unwatched"});
  EXPECT_EQ(stopped.exit_code, 5) << stopped.err;  // it did not power off: it never ran
  EXPECT_NE(stopped.err.find("the guest had not started (prelaunch): nothing to power off"),
            std::string::npos)
      << stopped.err;
  started_.clear();
}

}  // namespace
}  // namespace kvmrun
