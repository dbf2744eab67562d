#include "kvmrun/console.h"

#include <gtest/gtest.h>

#include <thread>

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using Outcome = ConsoleMatch::Outcome;

TEST(ConsoleLogTest, LinesSplitAcrossAppendsAndCrlf) {
  ConsoleLog log;
  log.Append("KVMRUN-GU");
  log.Append("EST-READY\r");
  log.Append("\nnext line\r\n");
  const ConsoleMatch m = log.WaitFor(std::regex("^KVMRUN-GUEST-READY$"), 0ms);
  EXPECT_EQ(m.outcome, Outcome::kMatched);
  EXPECT_EQ(m.line, "KVMRUN-GUEST-READY");
}

TEST(ConsoleLogTest, SuccessiveWaitsMoveForward) {
  ConsoleLog log;
  log.Append("step 1\nstep 2\nstep 3\n");
  EXPECT_EQ(log.WaitFor(std::regex("step \\d"), 0ms).line, "step 1");
  EXPECT_EQ(log.WaitFor(std::regex("step \\d"), 0ms).line, "step 2");
  EXPECT_EQ(log.WaitFor(std::regex("step 1"), 0ms).outcome, Outcome::kTimeout);
  EXPECT_EQ(log.WaitFor(std::regex("step 3"), 0ms).line, "step 3");
}

TEST(ConsoleLogTest, KernelMessagesInterleavedBetweenGuestLines) {
  ConsoleLog log;
  log.Append("[    1.23] virtio_blk virtio0: [vda] 2048 512-byte logical blocks\r\n");
  log.Append("[    1.24] random: crng init done\r\nKVMRUN-GUEST-READY\r\n[    1.25] reboot\r\n");
  const ConsoleMatch m =
      log.WaitForAny({std::regex("Kernel panic"), std::regex("KVMRUN-GUEST-READY")}, 0ms);
  EXPECT_EQ(m.outcome, Outcome::kMatched);
  EXPECT_EQ(m.pattern, 1u);
}

TEST(ConsoleLogTest, APromptWithoutNewlineMatchesOnce) {
  ConsoleLog log;
  log.Append("boot ok\nlogin: ");
  EXPECT_EQ(log.WaitFor(std::regex("login: $"), 0ms).outcome, Outcome::kMatched);
  log.Append("\n");
  EXPECT_EQ(log.WaitFor(std::regex("login:"), 0ms).outcome, Outcome::kTimeout)
      << "the completed prompt line was consumed already";
}

TEST(ConsoleLogTest, PatternSpanningAReadBoundaryMatchesWhenTheLineCompletes) {
  ConsoleLog log;
  std::thread writer([&] {
    for (const char* piece : {"KVMRUN-", "GUEST-", "READY", "\n"}) {
      std::this_thread::sleep_for(5ms);
      log.Append(piece);
    }
  });
  const ConsoleMatch m = log.WaitFor(std::regex("^KVMRUN-GUEST-READY$"), 5s);
  writer.join();
  EXPECT_EQ(m.outcome, Outcome::kMatched);
}

TEST(ConsoleLogTest, WaitEndsWhenTheConsoleCloses) {
  ConsoleLog log;
  std::thread closer([&] {
    std::this_thread::sleep_for(10ms);
    log.Append("last words\n");
    log.Close();
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(log.WaitFor(std::regex("never"), 10s).outcome, Outcome::kClosed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "no polling sleep, no full timeout";
  closer.join();
  EXPECT_EQ(log.Tail(), "last words");
}

TEST(ConsoleLogTest, TenMebibyteFloodKeepsABoundedTailAndStillMatches) {
  ConsoleLog log(1000);
  const std::string line(99, 'x');
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += line + "\n";  // ~100 KB
  for (int i = 0; i < 100; ++i) log.Append(chunk);      // ~10 MB
  log.Append("MARKER after the flood\n");
  EXPECT_EQ(log.bytes(), 100u * 100'000 + 23);
  const ConsoleMatch m = log.WaitFor(std::regex("^MARKER"), 1s);
  EXPECT_EQ(m.outcome, Outcome::kMatched);
  const std::string tail = log.Tail(3);
  EXPECT_EQ(tail, line + "\n" + line + "\nMARKER after the flood");
}

TEST(ConsoleLogTest, OverlongLinesAreCut) {
  ConsoleLog log;
  log.Append(std::string(ConsoleLog::kMaxLineBytes * 2, 'y') + "\n");
  EXPECT_EQ(log.Tail(1).size(), ConsoleLog::kMaxLineBytes);
}

}  // namespace
}  // namespace kvmrun
