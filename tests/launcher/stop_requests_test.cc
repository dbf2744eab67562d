#include "kvmrun/stop_requests.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <thread>

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

TEST(StopRequestsTest, RequestsAreTakenInOrderAndTheDescriptorFollows) {
  StopRequests stop;
  EXPECT_FALSE(stop.Pending());
  EXPECT_FALSE(Readable(stop.fd()));
  stop.Request("one");
  stop.Request("two");
  EXPECT_TRUE(stop.Pending());
  EXPECT_TRUE(Readable(stop.fd()));
  EXPECT_EQ(stop.Take(), "one");
  EXPECT_TRUE(stop.Pending());
  EXPECT_EQ(stop.Take(), "two");
  EXPECT_FALSE(stop.Pending());
  EXPECT_EQ(stop.Take(), std::nullopt);
}

TEST(StopRequestsTest, SignalsBecomeRequestsNamedAfterThem) {
  auto stop = StopRequests::ForSignals({SIGUSR2});
  raise(SIGUSR2);  // blocked now: it waits on the descriptor instead of killing the test
  EXPECT_TRUE(stop->Pending());
  EXPECT_EQ(stop->Take(), "SIGUSR2");
  EXPECT_FALSE(stop->Pending());
}

TEST(StopRequestsTest, WaitsGiveUpWithInterruptedNamingTheRequest) {
  StopRequests stop;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  EXPECT_FALSE(WaitForFd(pipe_fds[0], POLLIN, 10ms, &stop, "while testing"));
  std::thread([&] {
    std::this_thread::sleep_for(50ms);
    stop.Request("SIGTERM");
  }).join();
  try {
    WaitForFd(pipe_fds[0], POLLIN, 10s, &stop, "while testing");
    FAIL();
  } catch (const Interrupted& e) {
    EXPECT_STREQ(e.what(), "interrupted by SIGTERM while testing");
    EXPECT_EQ(e.reason(), "SIGTERM");
  }
  EXPECT_FALSE(stop.Pending());  // taken
  ASSERT_EQ(write(pipe_fds[1], "x", 1), 1);
  EXPECT_TRUE(WaitForFd(pipe_fds[0], POLLIN, 10s, &stop, "while testing"));
  EXPECT_NO_THROW(ThrowIfStopRequested(nullptr, "with no requests"));
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

}  // namespace
}  // namespace kvmrun
