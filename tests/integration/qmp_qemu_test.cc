// The QMP client and `kvmrun qmp` against a real qemu-system-x86_64 under TCG.
#include <gtest/gtest.h>

#include "kvmrun/qmp_client.h"
#include "kvmrun/qmp_commands.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using testing::ScopedQemu;

// The RTC's lost_tick_policy, found the way kvmrun finds it: /machine's rtc_state link.
std::string RtcLostTickPolicy(QmpClient& qmp) {
  const std::string rtc = QomGet(qmp, "/machine", "rtc_state").get<std::string>();
  return QomGet(qmp, rtc, "lost_tick_policy").get<std::string>();
}

TEST(QmpQemuTest, HandshakeAndQueryVersionMatchQemuVersionOutput) {
  KVMRUN_REQUIRE_QEMU(qemu);
  ScopedQemu vm(qemu, {});
  QmpClient qmp(ConnectQmpSocket(vm.socket_path(), 5s));
  const QemuVersionInfo version = QueryVersion(qmp);
  EXPECT_EQ(version.version, qmp.greeting().version);
  const auto printed = testing::RunCommand({qemu, "--version"});
  EXPECT_NE(printed.out.find("QEMU emulator version " + ToString(version.version)),
            std::string::npos)
      << printed.out << " vs " << ToString(version.version);
  EXPECT_EQ(QueryStatus(qmp).status, "prelaunch");
  EXPECT_FALSE(QueryKvm(qmp).enabled);
}

TEST(QmpQemuTest, RtcLostTickPolicyReadsSlewOnlyWithDriftfixSlew) {
  KVMRUN_REQUIRE_QEMU(qemu);
  ScopedQemu slewed(qemu, {"-rtc", "base=utc,driftfix=slew"});
  QmpClient with(ConnectQmpSocket(slewed.socket_path(), 5s));
  EXPECT_EQ(RtcLostTickPolicy(with), "slew");

  ScopedQemu plain(qemu, {});
  QmpClient without(ConnectQmpSocket(plain.socket_path(), 5s));
  EXPECT_EQ(RtcLostTickPolicy(without), "discard");
}

TEST(QmpQemuTest, StopYieldsAStopEventAndQuitEndsWithShutdown) {
  KVMRUN_REQUIRE_QEMU(qemu);
  ScopedQemu vm(qemu, {});
  QmpClient qmp(ConnectQmpSocket(vm.socket_path(), 5s));
  qmp.Execute("cont");
  EXPECT_EQ(qmp.WaitForEvent("RESUME", 5s).name, "RESUME");
  qmp.Execute("stop");
  const QmpEvent stop = qmp.WaitForEvent("STOP", 5s);
  EXPECT_GT(stop.timestamp, 1e9);
  EXPECT_EQ(QueryStatus(qmp).status, "paused");
  qmp.Execute("quit");
  const QmpEvent shutdown = qmp.WaitForEvent("SHUTDOWN", 5s);
  EXPECT_EQ(shutdown.data["reason"], "host-qmp-quit");
  EXPECT_EQ(vm.WaitExit(5s), 0);
  EXPECT_THROW(qmp.Execute("query-status", nullptr, 2s), QmpDisconnected);
}

TEST(QmpQemuTest, QemuErrorsBecomeQmpErrors) {
  KVMRUN_REQUIRE_QEMU(qemu);
  ScopedQemu vm(qemu, {});
  QmpClient qmp(ConnectQmpSocket(vm.socket_path(), 5s));
  try {
    QomGet(qmp, "/machine", "no-such-property");
    FAIL();
  } catch (const QmpError& e) {
    EXPECT_EQ(e.error_class(), "GenericError");
    EXPECT_EQ(e.command(), "qom-get");
    EXPECT_NE(e.description().find("no-such-property"), std::string::npos) << e.description();
  }
}

TEST(QmpQemuTest, ConnectingToAMissingSocketSaysSo) {
  testing::TempDir dir;
  try {
    ConnectQmpSocket(dir.path() + "/absent.sock");
    FAIL();
  } catch (const QmpDisconnected& e) {
    EXPECT_EQ(std::string(e.what()), "cannot connect to QMP socket " + dir.path() +
                                         "/absent.sock: No such file or directory");
  }
  EXPECT_THROW(ConnectQmpSocket(std::string(108, 'x')), UsageError);
}

TEST(QmpCliTest, QueryKvmAgainstAQemuStartedByHand) {
  KVMRUN_REQUIRE_QEMU(qemu);
  ScopedQemu vm(qemu, {});
  const auto r = testing::RunKvmrun({"qmp", "--qmp-socket", vm.socket_path(), "query-kvm"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out), (nlohmann::json{{"enabled", false}, {"present", true}}));
  EXPECT_EQ(testing::Lines(r.out).size(), 1u) << "compact when stdout is not a terminal";
}

TEST(QmpCliTest, ArgumentsEventsAndErrors) {
  KVMRUN_REQUIRE_QEMU(qemu);
  ScopedQemu vm(qemu, {"-rtc", "driftfix=slew"});
  const std::string& socket = vm.socket_path();
  auto r = testing::RunKvmrun(
      {"qmp", "--qmp-socket", socket, "qom-get", R"({"path": "/machine", "property": "hpet"})"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "true\n");

  r = testing::RunKvmrun({"qmp", "--qmp-socket", socket, "--events", "--count", "1", "cont"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = testing::Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;  // the return value, then the RESUME event
  EXPECT_EQ(lines[0], "{}");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["event"], "RESUME");

  r = testing::RunKvmrun(
      {"qmp", "--qmp-socket", socket, "qom-get", R"({"path": "/nowhere", "property": "x"})"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("QMP command 'qom-get' failed: DeviceNotFound"), std::string::npos) << r.err;

  r = testing::RunKvmrun(
      {"qmp", "--qmp-socket", socket, "--events", "--count", "1", "--timeout", "0.3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("got 0 of 1 events before the timeout"), std::string::npos) << r.err;
}

TEST(QmpCliTest, BadUsageExitsTwo) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"qmp", "query-kvm"},
        {"qmp", "--qmp-socket", "/nonexistent", "qom-get", "{not json"},
        {"qmp", "--qmp-socket", "/nonexistent"},
        {"qmp", "--qmp-socket", "/nonexistent", "--count", "1", "query-kvm"},
        {"qmp", "--qmp-socket", std::string(200, 's'), "query-kvm"}}) {
    const auto r = testing::RunKvmrun(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_EQ(testing::Lines(r.err).size(), 1u) << r.err;
  }
  const auto r = testing::RunKvmrun({"qmp", "--qmp-socket", "/nonexistent/qmp.sock", "query-kvm"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot connect to QMP socket /nonexistent/qmp.sock"), std::string::npos);
}

}  // namespace
}  // namespace kvmrun
