#include "kvmrun/qmp_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "kvmrun/qmp_commands.h"
#include "tests/support/fake_qmp_transport.h"

namespace kvmrun {
namespace {

using testing::AnswerWith;
using testing::FakeQmpPeer;
using testing::FakeTransport;
using testing::kGreeting72;
using testing::ReturnMessage;
using namespace std::chrono_literals;

std::shared_ptr<FakeQmpPeer> GreetingPeer(std::map<std::string, nlohmann::json> returns = {}) {
  auto peer = std::make_shared<FakeQmpPeer>();
  peer->SetResponder(AnswerWith(std::move(returns)));
  peer->Send(kGreeting72);
  return peer;
}

TEST(QmpClientTest, HandshakeReadsTheGreetingAndNegotiatesCapabilities) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  EXPECT_EQ(client.greeting().version, (QemuVersion{7, 2, 22}));
  EXPECT_EQ(client.greeting().package, "Debian 1:7.2");
  ASSERT_EQ(peer->commands().size(), 1u);
  EXPECT_EQ(peer->commands()[0]["execute"], "qmp_capabilities");
  EXPECT_TRUE(client.connected());
}

TEST(QmpClientTest, GreetingSplitAcrossReads) {
  auto peer = std::make_shared<FakeQmpPeer>();
  peer->SetResponder(AnswerWith({}));
  const std::string greeting = kGreeting72;
  for (char c : greeting) peer->Send(std::string(1, c));
  QmpClient client(FakeTransport(peer), 1s);
  EXPECT_EQ(client.greeting().version.major, 7);
}

TEST(QmpClientTest, NoGreetingTimesOutWithAHint) {
  auto peer = std::make_shared<FakeQmpPeer>();
  try {
    QmpClient client(FakeTransport(peer), 50ms);
    FAIL();
  } catch (const QmpTimeout& e) {
    EXPECT_STREQ(e.what(),
                 "waiting for the QMP greeting: nothing within 50 ms (is this a QMP socket, and is "
                 "another client connected to it?)");
  }
  EXPECT_TRUE(peer->shut_down());
}

TEST(QmpClientTest, AReplyBeforeTheGreetingIsAProtocolError) {
  auto peer = std::make_shared<FakeQmpPeer>();
  peer->Send("{\"return\": {}}\r\n");
  EXPECT_THROW(QmpClient(FakeTransport(peer), 1s), QmpProtocolError);
}

TEST(QmpClientTest, WrongTypedFieldsAreProtocolErrorsNotCrashes) {
  auto peer = std::make_shared<FakeQmpPeer>();
  peer->Send(R"({"QMP": {"version": {"qemu": {"major": "seven"}}}})"
             "\r\n");
  EXPECT_THROW(QmpClient(FakeTransport(peer), 1s), QmpProtocolError);

  auto odd = GreetingPeer();
  QmpClient client(FakeTransport(odd), 1s);
  odd->Send(R"({"event": "X", "timestamp": {"seconds": "soon"}})"
            "\r\n");
  EXPECT_EQ(client.WaitForEvent("X", 1s).timestamp, 0.0);
  odd->SetResponder([](const nlohmann::json& c) -> std::vector<std::string> {
    return {nlohmann::json{{"error", {{"class", "GenericError"}, {"desc", 42}}}, {"id", c["id"]}}
                .dump() +
            "\r\n"};
  });
  try {
    client.Execute("x");
    FAIL();
  } catch (const QmpError& e) {
    EXPECT_EQ(e.description(), "");
  }
}

// QEMU answers input it cannot parse with an error that has no id; it belongs to the oldest
// command waiting, which must see it instead of timing out.
TEST(QmpClientTest, AnErrorWithoutAnIdGoesToTheOldestWaitingCommand) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->SetResponder([](const nlohmann::json&) -> std::vector<std::string> {
    return {R"({"error": {"class": "GenericError", "desc": "JSON parse error"}})"
            "\r\n"};
  });
  const auto start = std::chrono::steady_clock::now();
  try {
    client.Execute("query-status", nullptr, 5s);
    FAIL();
  } catch (const QmpError& e) {
    EXPECT_EQ(e.description(), "JSON parse error");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(client.unmatched_replies(), 0u);
}

// The rest of an unparsable input gives QEMU more errors without an id; they must not be
// taken for the next command's answer.
TEST(QmpClientTest, FurtherErrorsWithoutAnIdDoNotPoisonTheNextCommand) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->SetResponder([](const nlohmann::json& c) -> std::vector<std::string> {
    const std::string idless = R"({"error": {"class": "GenericError", "desc": "stray"}})"
                               "\r\n";
    if (c["execute"] == "bad") return {idless, idless, idless};
    return {nlohmann::json{{"return", "fine"}, {"id", c["id"]}}.dump() + "\r\n"};
  });
  EXPECT_THROW(client.Execute("bad"), QmpError);
  EXPECT_EQ(client.Execute("good"), "fine");
  EXPECT_EQ(client.unmatched_replies(), 2u);
}

TEST(QmpClientTest, ExecuteReturnsTheValue) {
  auto peer = GreetingPeer({{"query-kvm", {{"enabled", false}, {"present", true}}}});
  QmpClient client(FakeTransport(peer), 1s);
  EXPECT_EQ(client.Execute("query-kvm"), (nlohmann::json{{"enabled", false}, {"present", true}}));
  const KvmStatus kvm = QueryKvm(client);
  EXPECT_FALSE(kvm.enabled);
  EXPECT_TRUE(kvm.present);
  EXPECT_EQ(peer->commands().back()["id"], peer->commands().size());
}

TEST(QmpClientTest, BatchedAndSplitRepliesAndEventsBetweenThem) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->SetResponder([](const nlohmann::json& command) -> std::vector<std::string> {
    // An event, then the reply split in three reads, then another event glued to its tail.
    const std::string reply =
        ReturnMessage({{"status", "paused"}, {"running", false}}, command["id"]);
    return {"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 5, \"microseconds\": 500000}}\r\n",
            reply.substr(0, 10), reply.substr(10, 10),
            reply.substr(20) + "{\"event\": \"RESUME\"}\r\n"};
  });
  const VmStatus status = QueryStatus(client);
  EXPECT_EQ(status.status, "paused");
  EXPECT_FALSE(status.running);
  const QmpEvent stop = client.WaitForEvent("STOP", 1s);
  EXPECT_DOUBLE_EQ(stop.timestamp, 5.5);
  // RESUME came in the same read as the reply's tail, or arrives with the next read.
  EXPECT_EQ(client.WaitForEvent("RESUME", 1s).name, "RESUME");
  EXPECT_TRUE(client.TakeEvents().empty());
}

TEST(QmpClientTest, EventHandlerSeesEveryEventInOrder) {
  auto peer = GreetingPeer({{"stop", nlohmann::json::object()}});
  QmpClient client(FakeTransport(peer), 1s);
  std::vector<std::string> seen;
  client.SetEventHandler([&](const QmpEvent& e) { seen.push_back(e.name); });
  peer->Send("{\"event\": \"A\"}\r\n{\"event\": \"B\"}\r\n");
  peer->Send("{\"event\": \"C\"}\r\n");
  client.WaitForEvent("C", 1s);
  EXPECT_EQ(seen, (std::vector<std::string>{"A", "B", "C"}));
  const auto queued = client.TakeEvents();
  ASSERT_EQ(queued.size(), 2u);
  EXPECT_EQ(queued[0].name, "A");
}

TEST(QmpClientTest, ErrorReplyThrowsQmpErrorWithClassDescriptionAndCommand) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  try {
    client.Execute("no-such-command");
    FAIL();
  } catch (const QmpError& e) {
    EXPECT_EQ(e.command(), "no-such-command");
    EXPECT_EQ(e.error_class(), "CommandNotFound");
    EXPECT_EQ(e.description(), "The command no-such-command has not been found");
    EXPECT_STREQ(e.what(),
                 "QMP command 'no-such-command' failed: CommandNotFound: The command "
                 "no-such-command has not been found");
  }
  EXPECT_TRUE(client.connected()) << "an error reply does not end the connection";
}

TEST(QmpClientTest, ReplyToAnUnknownIdIsDroppedAndCounted) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->SetResponder([](const nlohmann::json& command) -> std::vector<std::string> {
    return {ReturnMessage("stray", 999) + ReturnMessage("no id", nullptr),
            ReturnMessage("mine", command["id"])};
  });
  EXPECT_EQ(client.Execute("anything"), "mine");
  EXPECT_EQ(client.unmatched_replies(), 2u);
}

TEST(QmpClientTest, GarbageEndsTheConnectionWithAProtocolError) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->SetResponder(
      [](const nlohmann::json&) -> std::vector<std::string> { return {"\x01\x02 not json\r\n"}; });
  EXPECT_THROW(client.Execute("query-status"), QmpProtocolError);
  EXPECT_FALSE(client.connected());
  EXPECT_TRUE(peer->shut_down());
  EXPECT_THROW(client.Execute("query-status"), QmpProtocolError);
}

TEST(QmpClientTest, TruncatedJsonThenCloseIsADisconnect) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->SetResponder([&](const nlohmann::json&) -> std::vector<std::string> {
    return {"{\"return\": {\"status\": \"runn"};
  });
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    peer->SendEof();
  });
  try {
    client.Execute("query-status", nullptr, 2s);
    ADD_FAILURE();
  } catch (const QmpDisconnected& e) {
    EXPECT_STREQ(e.what(),
                 "waiting for the reply to 'query-status': QEMU closed the QMP connection in the "
                 "middle of a message");
  }
  closer.join();
}

TEST(QmpClientTest, TimeoutThenTheLateReplyIsDropped) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  std::int64_t slow_id = 0;
  peer->SetResponder([&](const nlohmann::json& command) -> std::vector<std::string> {
    if (command["execute"] == "slow") {
      slow_id = command["id"];
      return {};
    }
    return {ReturnMessage(nlohmann::json::object(), command["id"])};
  });
  try {
    client.Execute("slow", nullptr, 30ms);
    FAIL();
  } catch (const QmpTimeout& e) {
    EXPECT_STREQ(e.what(), "waiting for the reply to 'slow': none within 30 ms");
  }
  peer->Send(ReturnMessage("late", slow_id));
  EXPECT_EQ(client.Execute("fast"), nlohmann::json::object());
  EXPECT_EQ(client.unmatched_replies(), 1u);
  EXPECT_TRUE(client.connected());
}

TEST(QmpClientTest, DisconnectFailsEveryPendingCall) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->SetResponder([](const nlohmann::json&) { return std::vector<std::string>{}; });
  std::atomic<int> disconnected{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      try {
        client.Execute("query-status", nullptr, 5s);
      } catch (const QmpDisconnected& e) {
        if (std::string(e.what()).find("QEMU closed the QMP connection") != std::string::npos) {
          ++disconnected;
        }
      }
    });
  }
  while (peer->commands().size() < 5) std::this_thread::sleep_for(1ms);
  peer->SendEof();
  for (auto& t : callers) t.join();
  EXPECT_EQ(disconnected, 4);
  EXPECT_THROW(client.Execute("query-status"), QmpDisconnected);
}

TEST(QmpClientTest, ConcurrentCallsGetTheirOwnRepliesEvenOutOfOrder) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  std::mutex mu;
  std::vector<nlohmann::json> held;
  peer->SetResponder([&](const nlohmann::json& command) -> std::vector<std::string> {
    std::lock_guard lock(mu);
    held.push_back(command);
    if (held.size() < 8) return {};
    // Answer all eight at once, newest first.
    std::string all;
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      all += ReturnMessage((*it)["arguments"]["n"], (*it)["id"]);
    }
    return {all};
  });
  std::vector<std::thread> threads;
  std::atomic<int> correct{0};
  for (int n = 0; n < 8; ++n) {
    threads.emplace_back([&, n] {
      if (client.Execute("echo", {{"n", n}}, 5s) == n) ++correct;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(correct, 8);
}

TEST(QmpClientTest, CloseWakesAWaiter) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    client.Close();
  });
  EXPECT_THROW(client.WaitForEvent("SHUTDOWN", 5s), QmpDisconnected);
  closer.join();
  EXPECT_FALSE(client.connected());
}

TEST(QmpClientTest, WriteFailureIsADisconnect) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->FailWrites();
  EXPECT_THROW(client.Execute("query-status"), QmpDisconnected);
  EXPECT_FALSE(client.connected());
}

// What QEMU sent before a command failed to go out (it exited as the command was written) can
// still be read: the SHUTDOWN event and its reason are not lost with the write.
TEST(QmpClientTest, AFailedWriteLeavesWhatQemuSentBeforeItToRead) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  peer->Send("{\"event\": \"SHUTDOWN\", \"data\": {\"reason\": \"guest-shutdown\"}}\r\n");
  peer->SendEof();
  peer->FailWrites();
  EXPECT_THROW(client.Execute("query-status"), QmpDisconnected);
  EXPECT_FALSE(client.connected());
  EXPECT_EQ(client.WaitForEvent("SHUTDOWN", 1s).data["reason"], "guest-shutdown");
  EXPECT_THROW(client.Execute("query-status"), QmpDisconnected);
  EXPECT_THROW(client.WaitForEvent("SHUTDOWN", 1s), QmpDisconnected);  // the EOF came next
}

// A waiter does not see an event before the handler has, even while another thread's read is
// still handing it over (a SHUTDOWN event's reason read back as "" this way under load).
TEST(QmpClientTest, AWaiterSeesAnEventOnlyAfterTheHandlerHas) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  std::atomic<bool> in_handler{false}, handled{false};
  client.SetEventHandler([&](const QmpEvent& e) {
    if (e.name != "SHUTDOWN") return;
    in_handler = true;
    std::this_thread::sleep_for(200ms);
    handled = true;
  });
  peer->Send("{\"event\": \"SHUTDOWN\"}\r\n");
  std::thread reader([&] { client.WaitForEvent("LATER", 5s); });
  while (!in_handler) std::this_thread::sleep_for(1ms);
  client.WaitForEvent("SHUTDOWN", 5s);
  EXPECT_TRUE(handled);
  peer->Send("{\"event\": \"LATER\"}\r\n");
  reader.join();
}

TEST(QmpClientTest, EventQueueIsBounded) {
  auto peer = GreetingPeer();
  QmpClient client(FakeTransport(peer), 1s);
  std::string flood;
  for (std::size_t i = 0; i < QmpClient::kMaxQueuedEvents + 10; ++i) {
    flood += "{\"event\": \"E\", \"data\": {\"n\": " + std::to_string(i) + "}}\r\n";
  }
  peer->Send(flood + "{\"event\": \"LAST\"}\r\n");
  client.WaitForEvent("LAST", 1s);
  const auto events = client.TakeEvents();
  EXPECT_EQ(events.size(), QmpClient::kMaxQueuedEvents - 1);
  EXPECT_EQ(events.back().data["n"], QmpClient::kMaxQueuedEvents + 9);
}

TEST(QmpCommandsTest, TypedHelpersParseRealReplyShapes) {
  auto peer = GreetingPeer({
      {"query-version",
       {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 22}}}, {"package", "Debian"}}},
      {"qom-list", nlohmann::json::array({{{"name", "rtc"}, {"type", "child<mc146818rtc>"}}})},
      {"query-cpus-fast", nlohmann::json::array({{{"cpu-index", 0},
                                                  {"qom-path", "/machine/unattached/device[0]"},
                                                  {"thread-id", 42},
                                                  {"target", "x86_64"}}})},
      {"qom-list-types", nlohmann::json::array({{{"name", "kvm-pit"}, {"parent", "pit-common"}}})},
      {"device-list-properties", nlohmann::json::array({{{"name", "lost_tick_policy"},
                                                         {"type", "LostTickPolicy"},
                                                         {"default-value", "delay"}}})},
      {"query-command-line-options",
       nlohmann::json::array(
           {{{"option", "rtc"}, {"parameters", {{{"name", "driftfix"}, {"type", "string"}}}}}})},
      {"query-machines",
       nlohmann::json::array({{{"name", "pc-i440fx-7.2"}, {"alias", "pc"}, {"is-default", true}}})},
      {"qom-get", "slew"},
  });
  QmpClient client(FakeTransport(peer), 1s);
  EXPECT_EQ(QueryVersion(client).version, (QemuVersion{7, 2, 22}));
  EXPECT_EQ(QomList(client, "/machine")[0].type, "child<mc146818rtc>");
  EXPECT_EQ(QueryCpusFast(client)[0].qom_path, "/machine/unattached/device[0]");
  EXPECT_EQ(QomListTypes(client, "pit-common")[0].name, "kvm-pit");
  EXPECT_EQ(peer->commands().back()["arguments"]["implements"], "pit-common");
  EXPECT_EQ(*DeviceListProperties(client, "kvm-pit")[0].default_value, "delay");
  EXPECT_EQ(QueryCommandLineOptions(client, "rtc")[0].parameters,
            (std::vector<std::string>{"driftfix"}));
  EXPECT_TRUE(QueryMachines(client)[0].is_default);
  EXPECT_EQ(QomGet(client, "/machine/unattached/device[8]", "lost_tick_policy"), "slew");
}

TEST(QmpCommandsTest, UnexpectedReplyShapeIsAProtocolErrorNamingTheCommand) {
  auto peer = GreetingPeer({{"query-kvm", {{"enabled", "yes"}}}});
  QmpClient client(FakeTransport(peer), 1s);
  try {
    QueryKvm(client);
    FAIL();
  } catch (const QmpProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected reply to 'query-kvm'"), std::string::npos);
  }
}

// A command to a QEMU that has exited says so, not "Broken pipe".
TEST(QmpSocketTest, ACommandToAQemuThatHasGoneSaysSo) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  close(fds[1]);
  auto transport = AdoptQmpSocket(fds[0]);
  try {
    transport->Write("{}", std::chrono::steady_clock::now() + std::chrono::seconds(1));
    FAIL();
  } catch (const QmpDisconnected& e) {
    EXPECT_STREQ(e.what(), "QEMU closed the QMP connection (it has exited, or is exiting)");
  }
}

}  // namespace
}  // namespace kvmrun
