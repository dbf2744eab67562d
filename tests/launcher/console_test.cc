#include "kvmrun/console.h"

#include <gtest/gtest.h>

#include <thread>

#include "kvmrun/error.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using Outcome = ConsoleMatch::Outcome;

TEST(LineSplitterTest, JoinsPiecesCutsLongLinesAndKeepsThePartial) {
  LineSplitter splitter(8);
  std::vector<std::string> lines;
  const auto push = [&](std::string_view bytes) {
    splitter.Push(bytes, [&](std::string line) { lines.push_back(std::move(line)); });
  };
  push("ab");
  push("c\r\n\nthis line is far too long\nrest");
  EXPECT_EQ(lines, (std::vector<std::string>{"abc\r", "", "this lin"}));
  EXPECT_EQ(splitter.partial(), "rest");
  push(std::string(100, 'x'));
  EXPECT_EQ(splitter.partial(), "restxxxx");
  push("\n");
  EXPECT_EQ(lines.back(), "restxxxx");
  EXPECT_EQ(splitter.partial(), "");
}

TEST(ConsoleLogTest, LinesSplitAcrossAppendsAndCrlf) {
  ConsoleLog log;
  log.Append("KVMRUN-GU");
  log.Append("EST-READY\r");
  log.Append("\nnext line\r\n");
  const ConsoleMatch m = log.WaitFor(ConsolePattern("^KVMRUN-GUEST-READY$"), 0ms);
  EXPECT_EQ(m.outcome, Outcome::kMatched);
  EXPECT_EQ(m.line, "KVMRUN-GUEST-READY");
}

TEST(ConsoleLogTest, SuccessiveWaitsMoveForward) {
  ConsoleLog log;
  log.Append("step 1\nstep 2\nstep 3\n");
  EXPECT_EQ(log.WaitFor(ConsolePattern("step \\d"), 0ms).line, "step 1");
  EXPECT_EQ(log.WaitFor(ConsolePattern("step \\d"), 0ms).line, "step 2");
  EXPECT_EQ(log.WaitFor(ConsolePattern("step 1"), 0ms).outcome, Outcome::kTimeout);
  EXPECT_EQ(log.WaitFor(ConsolePattern("step 3"), 0ms).line, "step 3");
}

TEST(ConsoleLogTest, KernelMessagesInterleavedBetweenGuestLines) {
  ConsoleLog log;
  log.Append("[    1.23] virtio_blk virtio0: [vda] 2048 512-byte logical blocks\r\n");
  log.Append("[    1.24] random: crng init done\r\nKVMRUN-GUEST-READY\r\n[    1.25] reboot\r\n");
  const ConsoleMatch m =
      log.WaitForAny({ConsolePattern("Kernel panic"), ConsolePattern("KVMRUN-GUEST-READY")}, 0ms);
  EXPECT_EQ(m.outcome, Outcome::kMatched);
  EXPECT_EQ(m.pattern, 1u);
}

TEST(ConsoleLogTest, APromptWithoutNewlineMatchesOnce) {
  ConsoleLog log(ConsoleLog::kDefaultMaxLines, 10ms);
  log.Append("boot ok\nlogin: ");
  EXPECT_EQ(log.WaitFor(ConsolePattern("login: $"), 5s).outcome, Outcome::kMatched);
  log.Append("\n");
  EXPECT_EQ(log.WaitFor(ConsolePattern("login:"), 0ms).outcome, Outcome::kTimeout)
      << "the completed prompt line was consumed already";
}

// Whole lines: the first half of a line never matches, however long the wait, and the match
// is the whole deciding line. (The idle gap that makes a prompt count is an hour here.)
TEST(ConsoleLogTest, AHalfWrittenLineNeverMatchesAndTheWholeLineIsReported) {
  ConsoleLog log(ConsoleLog::kDefaultMaxLines, std::chrono::hours(1));
  log.Append("[    2.1] Kernel panic - not syncing: ");
  EXPECT_EQ(log.WaitFor(ConsolePattern("Kernel panic"), 50ms).outcome, Outcome::kTimeout);
  log.Append("VFS: Unable to mount root fs on unknown-block(0,0)\r\n");
  const ConsoleMatch m = log.WaitFor(ConsolePattern("Kernel panic"), 0ms);
  ASSERT_EQ(m.outcome, Outcome::kMatched);
  EXPECT_EQ(m.line,
            "[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs on "
            "unknown-block(0,0)");
}

// A line without a newline counts once it has been idle (a prompt), or once the console ends.
TEST(ConsoleLogTest, AnIdleOrFinalUnterminatedLineCounts) {
  ConsoleLog idle(ConsoleLog::kDefaultMaxLines, 20ms);
  idle.Append("Password: ");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(idle.WaitFor(ConsolePattern("^Password: $"), 5s).outcome, Outcome::kMatched);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms) << "matched before it was idle";

  ConsoleLog closing(ConsoleLog::kDefaultMaxLines, std::chrono::hours(1));
  closing.Append("last words");
  closing.Close();
  EXPECT_EQ(closing.WaitFor(ConsolePattern("^last words$"), 0ms).line, "last words");
}

TEST(ConsoleLogTest, AMatchCarriesItsCaptureGroups) {
  ConsoleLog log;
  log.Append("eth0: link up at 1000 Mbps\nKVMRUN-GUEST-DATE 2026-12-01T02:04:06Z\n");
  ConsoleMatch m = log.WaitFor(ConsolePattern(R"((\w+): link up at (\d+) Mbps( full)?)"), 0ms);
  ASSERT_EQ(m.outcome, Outcome::kMatched);
  EXPECT_EQ(m.groups, (std::vector<std::string>{"eth0", "1000", ""}));
  m = log.WaitFor(ConsolePattern("GUEST-DATE"), 0ms);
  EXPECT_TRUE(m.groups.empty()) << "no groups in the pattern";
  EXPECT_EQ(ConsolePattern("(a)(b)").Groups("xyz"), std::vector<std::string>{});
}

// Send-and-wait: what was there before the send, and the prompt line the send's echo
// completes, never answer for what comes after.
TEST(ConsoleLogTest, ConsumeAllLeavesOnlyWhatComesAfter) {
  ConsoleLog log;
  log.Append("answer 1\n/ # ");
  log.ConsumeAll();
  EXPECT_EQ(log.WaitFor(ConsolePattern("answer|/ #"), 0ms).outcome, Outcome::kTimeout);
  log.Append("echo answer 2\r\nanswer 2\r\n/ # ");
  EXPECT_EQ(log.WaitFor(ConsolePattern("answer"), 0ms).line, "answer 2");
  EXPECT_EQ(log.WaitFor(ConsolePattern("^/ # $"), 5s).outcome, Outcome::kMatched)
      << "the new prompt is new output";

  ConsoleLog without_prompt;
  without_prompt.Append("old\n");
  without_prompt.ConsumeAll();
  without_prompt.Append("new\n");
  EXPECT_EQ(without_prompt.WaitFor(ConsolePattern("old|new"), 0ms).line, "new");
}

TEST(ConsoleLogTest, PatternSpanningAReadBoundaryMatchesWhenTheLineCompletes) {
  ConsoleLog log;
  std::thread writer([&] {
    for (const char* piece : {"KVMRUN-", "GUEST-", "READY", "\n"}) {
      std::this_thread::sleep_for(5ms);
      log.Append(piece);
    }
  });
  const ConsoleMatch m = log.WaitFor(ConsolePattern("^KVMRUN-GUEST-READY$"), 5s);
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
  EXPECT_EQ(log.WaitFor(ConsolePattern("never"), 10s).outcome, Outcome::kClosed);
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
  const ConsoleMatch m = log.WaitFor(ConsolePattern("^MARKER"), 1s);
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

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

// Patterns that make a backtracking engine run for hours on a line the guest controls take
// time linear in the line here (RE2): the wait ends on its own timeout.
TEST(ConsolePatternTest, CatastrophicPatternsFinishAndMatchWhenTheyShould) {
  ConsoleLog log;
  log.Append(std::string(4000, 'a') + "\n");
  log.Append(std::string(4000, 'a'));  // and as the unterminated line
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(log.WaitForAny({ConsolePattern("(a+)+#"), ConsolePattern("^(a|aa)+b")}, 100ms).outcome,
            ConsoleMatch::Outcome::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(log.WaitFor(ConsolePattern("^(a|aa)+$"), 0ms).outcome, ConsoleMatch::Outcome::kMatched);
}

TEST(ConsolePatternTest, InvalidPatternsAreUsageErrorsAndLiteralsQuote) {
  try {
    ConsolePattern("(unclosed");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("invalid regular expression '(unclosed': missing )"),
              std::string::npos)
        << e.what();
  }
  const ConsolePattern literal = ConsolePattern::Literal("Kernel panic - not syncing (x)");
  EXPECT_TRUE(literal.Matches("[ 1.0] Kernel panic - not syncing (x): VFS"));
  EXPECT_FALSE(literal.Matches("Kernel panic - not syncing x"));
}

// A waiter consumes what it matched even when more lines arrive while it matches.
TEST(ConsolePatternTest, LinesArrivingDuringAWaitAreAllSeen) {
  ConsoleLog log;
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) log.Append("line " + std::to_string(i) + "\n");
  });
  EXPECT_EQ(log.WaitFor(ConsolePattern("^line 1999$"), 10s).outcome,
            ConsoleMatch::Outcome::kMatched);
  writer.join();
  EXPECT_EQ(log.WaitFor(ConsolePattern("^line 1500$"), 0ms).outcome,
            ConsoleMatch::Outcome::kTimeout);  // consumed by the match above
}

}  // namespace
}  // namespace kvmrun

namespace kvmrun {
namespace {

// A wait in slices resumes where the last slice stopped looking instead of scanning the whole
// history again; the line that matches is still found, and consumed.
TEST(ConsoleScanTest, SlicedWaitsResumeWhereTheLastOneStopped) {
  ConsoleLog log;
  for (int i = 0; i < 1000; ++i) log.Append("noise " + std::to_string(i) + "\n");
  ConsoleScan scan;
  const ConsolePattern ready("^READY$");
  EXPECT_EQ(log.WaitFor(ready, std::chrono::milliseconds(0), &scan).outcome,
            ConsoleMatch::Outcome::kTimeout);
  EXPECT_EQ(scan.next_line, 1000u);
  log.Append("READY\n");
  const ConsoleMatch m = log.WaitFor(ready, std::chrono::milliseconds(0), &scan);
  EXPECT_EQ(m.outcome, ConsoleMatch::Outcome::kMatched);
  EXPECT_EQ(m.line, "READY");
  // The match consumed everything up to it, for every waiter.
  EXPECT_EQ(log.WaitFor(ConsolePattern("noise 5"), std::chrono::milliseconds(0)).outcome,
            ConsoleMatch::Outcome::kTimeout);
}

}  // namespace
}  // namespace kvmrun
