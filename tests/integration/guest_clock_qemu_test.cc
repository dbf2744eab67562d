// The guest's own clock on the busybox test guest under TCG, through the CLI: its offset in
// verify, a QMP pause and a SIGSTOP seen by the stall watch, resync (kvmrun sync and
// --resync=auto), a clock set an hour wrong failing verify, and a guest without an agent.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "kvmrun/guest_clock.h"
#include "tests/support/named_vm_fixture.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

class GuestClockQemuTest : public testing::NamedVmFixture {
 protected:
  void Detach(const std::string& name, std::vector<std::string> extra, std::string append = "") {
    const auto r = NamedVmFixture::Detach(name, extra, append);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // verify NAME --json: the rows by timer, and the exit code.
  nlohmann::json Verify(const std::string& name, std::vector<std::string> extra = {},
                        int* exit_code = nullptr) {
    std::vector<std::string> args = {"verify", name, "--json"};
    if (std::find(extra.begin(), extra.end(), "--agent-wait") == extra.end()) {
      args.insert(args.end(), {"--agent-wait", "60"});  // the guest may still be booting
    }
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = Kvmrun(args);
    if (exit_code != nullptr) *exit_code = r.exit_code;
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.err;
    nlohmann::json rows = nlohmann::json::object();
    const nlohmann::json report = nlohmann::json::parse(r.out);
    for (const auto& check : report["checks"]) rows[check["timer"].get<std::string>()] = check;
    rows["_offset"] = report.value("guest_offset", nlohmann::json());
    return rows;
  }
  double OffsetOf(const std::string& name) {
    const nlohmann::json rows = Verify(name, {"--max-offset", "100000"});
    EXPECT_TRUE(rows["_offset"].is_object()) << rows.dump(2);
    return rows["_offset"].value("offset_s", 1e9);
  }
  pid_t QemuPid(const std::string& name) {
    std::ifstream in(VmFile(name, "vm.json"));
    return nlohmann::json::parse(in).value("qemu_pid", -1);
  }
  std::string SupervisorLog(const std::string& name) {
    std::ifstream in(VmFile(name, "kvmrun.log"));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void PauseOverQmp(const std::string& name, std::chrono::seconds length) {
    ASSERT_EQ(Kvmrun({"qmp", "--qmp-socket", name, "stop"}).exit_code, 0);
    std::this_thread::sleep_for(length);
    ASSERT_EQ(Kvmrun({"qmp", "--qmp-socket", name, "cont"}).exit_code, 0);
  }
  // Waits (up to 60 s) until the supervisor's log has `text`: the stall watch polls every
  // 250 ms, a resync talks to the guest, the gate waits for the guest to boot.
  bool LogSays(const std::string& name, const std::string& text) {
    for (int i = 0; i < 600; ++i) {
      if (SupervisorLog(name).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
};

TEST_F(GuestClockQemuTest, OffsetIsSmallAfterBootAndAPauseIsSeenThenSyncSetsItRight) {
  Detach("clock", {});
  // Freshly booted: within the threshold, with its uncertainty, and the clocksource TCG gives.
  nlohmann::json rows = Verify("clock");
  EXPECT_EQ(rows["guest-time"]["result"], "ok") << rows.dump(2);
  EXPECT_LT(std::abs(rows["_offset"]["offset_s"].get<double>()), 2.0);
  EXPECT_GT(rows["_offset"]["uncertainty_s"].get<double>(), 0.0);
  EXPECT_LT(rows["_offset"]["uncertainty_s"].get<double>(), 0.5);
  EXPECT_EQ(rows["guest-clocksource"]["result"], "ok") << rows.dump(2);
  EXPECT_FALSE(rows["guest-clocksource"]["observed"].get<std::string>().empty());
  const double booted = rows["_offset"]["offset_s"];

  // A QMP pause: the guest's TSC stops with the VM, so its clock falls behind by the pause.
  PauseOverQmp("clock", 3s);
  EXPECT_TRUE(LogSays("clock", "(paused over QMP); its clock may be behind ('kvmrun sync clock'"))
      << SupervisorLog("clock");
  int code = 0;
  rows = Verify("clock", {}, &code);
  EXPECT_EQ(code, 3) << rows.dump(2);
  EXPECT_EQ(rows["guest-time"]["result"], "MISMATCH");
  EXPECT_LT(rows["_offset"]["offset_s"].get<double>(), booted - 2.5);

  // SIGSTOP: TCG's TSC follows the host's, so the guest's clock keeps up (or not); seen anyway.
  const double before_sigstop = OffsetOf("clock");
  ASSERT_EQ(kill(QemuPid("clock"), SIGSTOP), 0);
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(kill(QemuPid("clock"), SIGCONT), 0);
  EXPECT_TRUE(LogSays("clock", "(QEMU stopped by a signal)")) << SupervisorLog("clock");
  std::cout << "[ measured ] offset before SIGSTOP " << before_sigstop << " s, after 3 s of it "
            << OffsetOf("clock") << " s\n";

  const auto sync = Kvmrun({"sync", "clock", "--json"});
  ASSERT_EQ(sync.exit_code, 0) << sync.err;
  const nlohmann::json resync = nlohmann::json::parse(sync.out);
  EXPECT_LT(resync["before"]["offset_s"].get<double>(), -2.5) << sync.out;
  EXPECT_LT(std::abs(resync["after"]["offset_s"].get<double>()), 0.1) << sync.out;
  rows = Verify("clock", {}, &code);
  EXPECT_EQ(code, 0) << rows.dump(2);
}

TEST_F(GuestClockQemuTest, AClockAnHourWrongFailsVerifyAndAutoResyncFollowsAPause) {
  Detach("hour", {"--resync", "auto"});
  // The run's own gate reads the guest's clock once the agent answers; the hour comes after.
  ASSERT_TRUE(LogSays("hour", "kvmrun: guest-time ")) << SupervisorLog("hour");
  {
    const auto agent = ConnectGuestAgent(VmFile("hour", "agent.sock"), 60s);
    const std::int64_t now = SystemTimeSource().realtime_ns();
    agent->SetTime(now - 3600LL * 1'000'000'000);
  }
  int code = 0;
  nlohmann::json rows = Verify("hour", {"--max-offset", "60"}, &code);
  EXPECT_EQ(code, 3) << rows.dump(2);
  EXPECT_EQ(rows["guest-time"]["result"], "MISMATCH");
  EXPECT_NEAR(rows["_offset"]["offset_s"].get<double>(), -3600, 5);

  // --resync=auto: the pause is followed by a resync, which also undoes the hour.
  PauseOverQmp("hour", 2s);
  EXPECT_TRUE(LogSays("hour", "guest clock resynced: offset -36")) << SupervisorLog("hour");
  rows = Verify("hour", {}, &code);
  EXPECT_EQ(code, 0) << rows.dump(2);
  EXPECT_LT(std::abs(rows["_offset"]["offset_s"].get<double>()), 0.5);
}

TEST_F(GuestClockQemuTest, WithoutAnAgentTheRowsSaySoAndVerifyPasses) {
  Detach("noport", {"--no-agent"});
  int code = -1;
  nlohmann::json rows = Verify("noport", {}, &code);
  EXPECT_EQ(code, 0) << rows.dump(2);
  EXPECT_EQ(rows["guest-time"]["observed"], "no agent");
  EXPECT_NE(rows["guest-time"]["detail"].get<std::string>().find("--no-agent"), std::string::npos);
  EXPECT_EQ(rows["guest-clocksource"]["observed"], "no agent");

  // A port but no agent in the guest: the wait ends, the rows say why, exit 0.
  Detach("silent", {}, "kvmrun.no-agent");
  rows = Verify("silent", {"--agent-wait", "1"}, &code);
  EXPECT_EQ(code, 0) << rows.dump(2);
  EXPECT_EQ(rows["guest-time"]["observed"], "no agent");
  EXPECT_NE(rows["guest-time"]["detail"].get<std::string>().find("qemu-guest-agent"),
            std::string::npos);
  const auto sync = Kvmrun({"sync", "noport"});
  EXPECT_EQ(sync.exit_code, 1) << sync.err;
  EXPECT_NE(sync.err.find("no guest agent port"), std::string::npos) << sync.err;
}

TEST_F(GuestClockQemuTest, TimecheckWallModeShowsAQmpPauseInTheGuestsClock) {
  const auto r = Kvmrun({"timecheck", "--mode", "wall", "--os", "linux", "--stall", "qmp",
                         "--stalls", "1", "--stall-seconds", "2", "--duration", "5", "--kernel",
                         testing::TestKernel(), "--initrd", testing::TestInitrd(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json out = nlohmann::json::parse(r.out);
  ASSERT_EQ(out["runs"].size(), 1u) << r.out;
  const nlohmann::json& run = out["runs"][0];
  EXPECT_EQ(run["label"], "linux");
  ASSERT_EQ(run["stalls"].size(), 1u) << r.out;
  const nlohmann::json& stall = run["stalls"][0];
  // Under TCG the guest's clocksource stops with the VM: it falls behind by the pause.
  EXPECT_NEAR(stall["after_s"].get<double>() - stall["before_s"].get<double>(), -2.0, 0.5) << r.out;
  EXPECT_LT(run["worst_uncertainty_s"].get<double>(), 0.5);
  EXPECT_FALSE(run["clocksource"].get<std::string>().empty());
}

}  // namespace
}  // namespace kvmrun
