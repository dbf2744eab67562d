// Snapshots of the busybox test guest under TCG, through the CLI: saved from a named VM and at
// a console line, restored three times (each with its own disk overlay, its console running
// on, its clock set from seconds behind), and every refusal with nothing left behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "kvmrun/qmp_client.h"
#include "kvmrun/qmp_transport.h"
#include "tests/support/named_vm_fixture.h"
#include "tests/support/qemu_binary.h"
#include "tests/support/scratch.h"
#include "tests/support/test_guest.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class SnapshotQemuTest : public testing::NamedVmFixture {
 protected:
  // Waits (up to 60 s) until `file` of the named VM says `text`; returns what it says then.
  std::string WaitForVmFile(const std::string& name, const std::string& file,
                            const std::string& text) {
    std::string content;
    for (int i = 0; i < 600; ++i) {
      content = ReadFile(VmFile(name, file));
      if (content.find(text) != std::string::npos) break;
      std::this_thread::sleep_for(100ms);
    }
    return content;
  }
  testing::CommandResult Exec(const std::string& name, const std::string& script) {
    return Kvmrun({"exec", name, "--agent-wait", "60", "--", "sh", "-c", script});
  }
  // Nothing of a VM left: no registry entry, no QEMU of the test's.
  bool NothingRuns() {
    const auto r = Kvmrun({"ps", "--json"});
    return r.exit_code == 0 && r.out.find("\"name\"") == std::string::npos;
  }
};

TEST_F(SnapshotQemuTest, ThreeRestoresEachWithItsOwnOverlayConsoleAndAClockSetRight) {
  const std::string disk = dir_.path() + "/disk.img";
  std::ofstream(disk) << std::string(1 << 20, '\0');
  const auto disk_time = std::filesystem::last_write_time(disk);
  const std::string file = dir_.path() + "/booted.kvmrun";
  ASSERT_EQ(Detach("base", {"--disk", disk}).exit_code, 0);
  ASSERT_EQ(Exec("base", "true").exit_code, 0);  // the agent answers: the snapshot has it up
  const auto saved = Kvmrun({"snapshot", "save", "base", file});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  EXPECT_NE(saved.err.find("VM 'base' was stopped"), std::string::npos) << saved.err;
  const auto show = Kvmrun({"snapshot", "show", file, "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  const auto header = nlohmann::json::parse(show.out);
  EXPECT_EQ(header["identity"]["disks"][0]["path"], disk);
  EXPECT_GT(header["state_bytes"].get<std::uint64_t>(), 1u << 20);

  std::this_thread::sleep_for(3s);  // the restored guests' clocks are this much behind
  for (int i = 1; i <= 3; ++i) {
    const std::string name = "restored" + std::to_string(i);
    const auto r = Detach(name, {"--disk", disk, "--restore", file});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The clock was set, from seconds behind (the wait above plus the earlier restores).
    const std::string log = WaitForVmFile(name, "kvmrun.log", "guest clock:");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(log, m,
                                  std::regex(R"(guest clock: offset ([-+]\d+\.\d+) s .* -> )"
                                             R"(([-+]\d+\.\d+) s)")))
        << log;
    EXPECT_LT(std::stod(m[1]), -2.5) << log;
    EXPECT_LT(std::abs(std::stod(m[2])), 0.5) << log;
    // The disk as the snapshot left it, then this restore's own write, which no other sees.
    const auto before = Exec(name, "head -c 8 /dev/vda | od -An -c | tr -d ' \\n'");
    ASSERT_EQ(before.exit_code, 0) << before.err;
    EXPECT_EQ(before.out, "\\0\\0\\0\\0\\0\\0\\0\\0") << name;
    ASSERT_EQ(Exec(name, "printf wrote" + std::to_string(i) +
                             " | dd of=/dev/vda conv=notrunc 2>/dev/null && sync && "
                             "head -c 6 /dev/vda && echo restored-console-" +
                             std::to_string(i) + " > /dev/ttyS0")
                  .out,
              "wrote" + std::to_string(i));
    // The console carries on from the snapshot's.
    EXPECT_NE(WaitForVmFile(name, "console.log", "restored-console-" + std::to_string(i))
                  .find("restored-console-" + std::to_string(i)),
              std::string::npos);
    const auto verify = Kvmrun({"verify", name, "--json"});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  }
  for (int i = 1; i <= 3; ++i) Kvmrun({"stop", "restored" + std::to_string(i)});
  EXPECT_EQ(ReadFile(disk), std::string(1 << 20, '\0'));
  EXPECT_EQ(std::filesystem::last_write_time(disk), disk_time);

  // The disk changed under the snapshot: refused, nothing started.
  std::ofstream(disk, std::ios::app) << "x";
  const auto refused = Detach("late", {"--disk", disk, "--restore", file});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("changed since the snapshot was saved"), std::string::npos)
      << refused.err;
  EXPECT_TRUE(NothingRuns());
}

// A VM is judged by the policy it was given: an override kept in a named, detached VM's record
// and, saved, in its snapshot's header, so the restored VM (started with the same options)
// verifies ok too; a clock changed behind kvmrun's back still reads MISMATCH.
TEST_F(SnapshotQemuTest, VerifyByNameJudgesByThePolicyTheVmWasGiven) {
  const std::vector<std::string> override = {"--rtc-policy", "discard"};
  ASSERT_EQ(Detach("given", override).exit_code, 0);
  const auto verify = Kvmrun({"verify", "given"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("policy linux with overrides rtc-policy=discard (as VM 'given' was "
                            "started)"),
            std::string::npos)
      << verify.out;
  const auto ps = nlohmann::json::parse(Kvmrun({"ps", "--json"}).out);
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0]["overrides"], "rtc-policy=discard");

  ASSERT_EQ(Exec("given", "true").exit_code, 0);
  const std::string file = dir_.path() + "/given.kvmrun";
  ASSERT_EQ(Kvmrun({"snapshot", "save", "given", file}).exit_code, 0);
  const auto header = nlohmann::json::parse(Kvmrun({"snapshot", "show", file, "--json"}).out);
  EXPECT_EQ(header["identity"]["policy"]["settings"]["rtc-policy"]["value"], "discard");
  EXPECT_EQ(header["identity"]["policy"]["settings"]["rtc-policy"]["overridden"], true);

  std::vector<std::string> restore = override;
  restore.insert(restore.end(), {"--restore", file});
  const auto restored = Detach("back", restore);
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  const auto verify_back = Kvmrun({"verify", "back", "--agent-wait", "60"});
  EXPECT_EQ(verify_back.exit_code, 0) << verify_back.out << verify_back.err;

  // Behind kvmrun's back: the guest's wall clock set 25 years off. verify says so, exit 3.
  ASSERT_EQ(Exec("back", "date -s '2001-01-01 00:00:00' >/dev/null").exit_code, 0);
  const auto changed = Kvmrun({"verify", "back"});
  EXPECT_EQ(changed.exit_code, 3) << changed.out << changed.err;
  EXPECT_NE(changed.out.find("MISMATCH"), std::string::npos) << changed.out;
}

// Every phase answers a stop: a restored VM whose guest has no agent (the port, but nothing on
// it) waits for one to set its clock, and `kvmrun stop` ends it within its --timeout anyway;
// so does a stop while `kvmrun exec` holds the agent, whose client then fails saying so.
TEST_F(SnapshotQemuTest, StopAnswersInARestoresAgentWaitAndDuringAnExec) {
  ASSERT_EQ(Detach("mute", {}, "kvmrun.no-agent").exit_code, 0);
  const std::string file = dir_.path() + "/mute.kvmrun";
  ASSERT_EQ(
      WaitForVmFile("mute", "console.log", "KVMRUN-GUEST-HOLDING").find("KVMRUN-GUEST-HOLDING") !=
          std::string::npos,
      true);
  ASSERT_EQ(Kvmrun({"snapshot", "save", "mute", file}).exit_code, 0);
  ASSERT_EQ(Detach("waiting", {"--restore", file}, "kvmrun.no-agent").exit_code, 0);
  // The supervisor is in its agent wait now (up to --agent-wait, 120 s by default).
  const std::string log = WaitForVmFile("waiting", "kvmrun.log", "waiting up to");
  EXPECT_NE(log.find("for the restored guest's agent to set its clock"), std::string::npos) << log;
  const auto stopped = Kvmrun({"stop", "waiting", "--timeout", "20"});
  EXPECT_EQ(stopped.exit_code, 5) << stopped.err;  // nothing in the guest could power it off
  EXPECT_TRUE(NothingRuns());

  ASSERT_EQ(Detach("busy").exit_code, 0);
  ASSERT_EQ(Exec("busy", "true").exit_code, 0);
  testing::ScopedProcess exec({KVMRUN_CLI_PATH, "exec", "busy", "--", "sleep", "600"},
                              Options().extra_env, dir_.path() + "/exec.log");
  std::this_thread::sleep_for(1s);  // the exec holds the agent's port
  const auto stop_busy = Kvmrun({"stop", "busy", "--timeout", "30"});
  EXPECT_TRUE(stop_busy.exit_code == 4 || stop_busy.exit_code == 5) << stop_busy.err;
  const auto exec_status = exec.WaitExit(30s);
  ASSERT_TRUE(exec_status.has_value()) << exec.Output();
  EXPECT_EQ(*exec_status, 1) << exec.Output();
  EXPECT_NE(exec.Output().find("kvmrun exec:"), std::string::npos) << exec.Output();
  started_.clear();
  EXPECT_TRUE(NothingRuns());
}

// A stop during a snapshot save: QEMU as a save holds it (paused by "stop", an outgoing
// migration to a file under way, slowed here to 64 KiB/s so that it lasts minutes). The power
// button cannot reach a paused guest, so the ladder cancels the save and resumes the guest,
// which then powers off when asked: a clean stop within seconds, saying what it did, not a
// grace spent waiting and a forced quit.
TEST_F(SnapshotQemuTest, StopDuringASaveCancelsItAndTheGuestPowersOffWhenAsked) {
  ASSERT_EQ(Detach("saving").exit_code, 0);
  ASSERT_EQ(Exec("saving", "true").exit_code, 0);  // booted and answering
  QmpClient qmp(ConnectQmpSocket(VmFile("saving", "qmp.sock"), 5s));
  qmp.Execute("stop");
  qmp.Execute("migrate-set-parameters", {{"max-bandwidth", 64 << 10}});
  const std::string target = dir_.path() + "/unfinished.state";
  const int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  qmp.ExecuteWithFd("getfd", {{"fdname", "save"}}, fd);
  close(fd);
  qmp.Execute("migrate", {{"uri", "fd:save"}});
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(qmp.Execute("query-migrate").value("status", ""), "active");

  const auto stopped = Kvmrun({"stop", "saving", "--timeout", "30", "--json"});
  EXPECT_EQ(stopped.exit_code, 4) << stopped.err;  // powered off when asked, not after the grace
  EXPECT_NE(stopped.err.find("a snapshot save in progress was cancelled; the paused guest was "
                             "resumed to hear the power button"),
            std::string::npos)
      << stopped.err;
  const auto record = nlohmann::json::parse(stopped.out);
  EXPECT_EQ(record["forced"], false) << stopped.out;
  started_.clear();
  EXPECT_TRUE(NothingRuns());
}

TEST_F(SnapshotQemuTest, SavedAtAConsoleLineAndRefusedForEveryMismatch) {
  const std::string file = dir_.path() + "/at-line.kvmrun";
  auto args = testing::RunTestGuestArgs("linux", "kvmrun.hold");
  auto save = args;
  save.insert(save.end(), {"--snapshot-at", "KVMRUN-GUEST-HOLDING", "--save", file});
  const auto saved = Kvmrun(save);
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  EXPECT_NE(saved.err.find("at the console line 'KVMRUN-GUEST-HOLDING'"), std::string::npos);
  const std::string whole = ReadFile(file);

  const auto restore = [&](std::vector<std::string> extra, const std::string& from) {
    auto a = args;
    a.insert(a.end(), extra.begin(), extra.end());
    a.insert(a.end(), {"--restore", from, "--timeout", "6", "--grace", "1"});
    return Kvmrun(a);
  };
  const auto expect_refused = [&](const testing::CommandResult& r, const std::string& says) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("TIMER"), std::string::npos) << "no VM should have started";
    EXPECT_TRUE(testing::Leftovers(dir_.path()).empty());
  };
  expect_refused(restore({"--memory", "1G"}, file),
                 "the snapshot has '-m 512' where this VM has '-m 1024'");
  const std::string cut = dir_.path() + "/cut.kvmrun";
  std::ofstream(cut, std::ios::binary) << whole.substr(0, whole.size() / 2);
  expect_refused(restore({}, cut), "is truncated");
  const std::string damaged = dir_.path() + "/damaged.kvmrun";
  std::string bytes = whole;
  for (std::size_t at = 70000; at < bytes.size(); at += bytes.size() / 7) bytes[at] ^= 0x5a;
  std::ofstream(damaged, std::ios::binary) << bytes;
  const auto r = restore({}, damaged);
  EXPECT_EQ(r.exit_code, 2) << r.err;  // the checksum, or QEMU's own check, whichever is first
  EXPECT_TRUE(std::regex_search(r.err, std::regex("is corrupt|cannot restore"))) << r.err;
  EXPECT_TRUE(testing::Leftovers(dir_.path()).empty());
  for (const std::string& label : testing::QemuLabels()) {
    const std::string other = testing::QemuBinary(label);
    if (other.empty() || other == qemu_) continue;
    expect_refused(restore({"--qemu", other}, file), "it was saved by QEMU ");
  }
  // --save alone, and a snapshot of a VM whose disk writes go to a temporary overlay.
  EXPECT_EQ(Kvmrun({"run", "--os", "linux", "--save", file}).exit_code, 2);
  const std::string disk = dir_.path() + "/scratch.img";
  std::ofstream(disk) << std::string(4096, '\0');
  ASSERT_EQ(Detach("overlaid", {"--disk", disk, "--snapshot"}).exit_code, 0);
  const auto overlaid = Kvmrun({"snapshot", "save", "overlaid", dir_.path() + "/o.kvmrun"});
  EXPECT_EQ(overlaid.exit_code, 2);
  EXPECT_NE(overlaid.err.find("go to a temporary overlay"), std::string::npos) << overlaid.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/o.kvmrun"));

  // The plan of a restore shows where the stream goes.
  const auto plan = restore({"--dry-run"}, file);
  EXPECT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_NE(plan.out.find("-incoming fd:5"), std::string::npos) << plan.out;

  // A 9p share mounted in the guest blocks QEMU's migration: the save fails with QEMU's
  // reason, leaves no file, and the VM runs on.
  const std::string share = dir_.path() + "/share";
  std::filesystem::create_directories(share);
  ASSERT_EQ(Detach("shared", {"--share", share}).exit_code, 0);
  // --agent-timeout: exec's old name of --agent-wait, still taken.
  ASSERT_EQ(Kvmrun({"exec", "shared", "--agent-timeout", "60", "--", "true"}).exit_code, 0);
  const auto blocked = Kvmrun({"snapshot", "save", "shared", dir_.path() + "/s.kvmrun"});
  EXPECT_EQ(blocked.exit_code, 1) << blocked.err;
  EXPECT_NE(blocked.err.find("is mounted in the guest"), std::string::npos) << blocked.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/s.kvmrun"));
  const auto still = Kvmrun({"qmp", "--qmp-socket", "shared", "query-status"});
  EXPECT_NE(still.out.find("\"running\""), std::string::npos) << still.out << still.err;

  // Restored as saved: it runs, and the gate finds the clock set.
  const auto ok = restore({"--json"}, file);
  EXPECT_EQ(ok.exit_code, 6) << ok.err;  // held until --timeout
  EXPECT_NE(ok.err.find("guest clock: offset"), std::string::npos) << ok.err;
  EXPECT_TRUE(std::regex_search(ok.err, std::regex(R"(guest-time [-+]0\.\d+ s [^\n]*: ok)")))
      << ok.err;
  const auto report = nlohmann::json::parse(ok.out);
  EXPECT_EQ(report["restored_from"]["file"], file);
  EXPECT_GT(report["timings"]["incoming_ms"].get<double>(), 0.0);
  EXPECT_EQ(report["stopped_by"].get<std::string>().rfind("timeout", 0), 0u) << ok.out;
}

}  // namespace
}  // namespace kvmrun
