// The guest-agent client against a fake qemu-ga: syncing past stale bytes, silence, a port
// that closes, guest-exec with its base64 output, timeouts.
#include "kvmrun/guest_agent.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include "qmp/json_fields.h"
#include "tests/support/fake_qmp_transport.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;
using testing::FakeQmpPeer;
using testing::FakeTransport;

GuestExecRequest Command(std::vector<std::string> argv, std::chrono::milliseconds timeout = 10s) {
  GuestExecRequest request;
  request.argv = std::move(argv);
  request.timeout = timeout;
  return request;
}

std::string Reply(const nlohmann::json& value, const nlohmann::json& id) {
  return nlohmann::json{{"return", value}, {"id", id}}.dump() + "\n";
}

// qemu-ga as the tests need it: syncs, pings, runs "commands" from a table.
struct FakeAgent {
  struct Program {
    int exit_code = 0;
    std::string out, err;
    bool never_exits = false;
  };
  std::map<std::string, Program> programs;
  std::vector<std::string> before_sync_reply;  // sent before the marker of each sync reply
  std::vector<nlohmann::json> execs;           // guest-exec arguments seen
  std::map<std::int64_t, Program> running;
  std::int64_t next_pid = 100;

  FakeQmpPeer::Responder Responder() {
    return [this](const nlohmann::json& c) -> std::vector<std::string> {
      const std::string name = c.value("execute", "");
      const nlohmann::json args = c.value("arguments", nlohmann::json::object());
      const nlohmann::json id = c.value("id", nlohmann::json());
      if (name == "guest-sync-delimited") {
        std::vector<std::string> out = before_sync_reply;
        out.push_back("\xff" + nlohmann::json{{"return", args["id"]}}.dump() + "\n");
        return out;
      }
      if (name == "guest-ping") return {Reply(nlohmann::json::object(), id)};
      if (name == "guest-get-time") return {Reply(1795755600123456789LL, id)};
      if (name == "guest-exec") {
        execs.push_back(args);
        const std::string path = args["path"];
        if (path == "kill") {
          running.erase(std::stoll(args["arg"][1].get<std::string>()));
          return {Reply({{"pid", next_pid++}}, id)};
        }
        const auto it = programs.find(path);
        if (it == programs.end()) {
          return {nlohmann::json{{"error",
                                  {{"class", "GenericError"},
                                   {"desc", "Failed to execute child process \"" + path +
                                                "\" (No such file or directory)"}}},
                                 {"id", id}}
                      .dump() +
                  "\n"};
        }
        running[next_pid] = it->second;
        return {Reply({{"pid", next_pid++}}, id)};
      }
      if (name == "guest-exec-status") {
        const auto it = running.find(args["pid"].get<std::int64_t>());
        if (it == running.end()) return {Reply({{"exited", true}, {"signal", 9}}, id)};
        if (it->second.never_exits) return {Reply({{"exited", false}}, id)};
        nlohmann::json status = {{"exited", true}, {"exitcode", it->second.exit_code}};
        if (!it->second.out.empty()) status["out-data"] = Base64Encode(it->second.out);
        if (!it->second.err.empty()) status["err-data"] = Base64Encode(it->second.err);
        return {Reply(status, id)};
      }
      return {};
    };
  }
};

class GuestAgentTest : public ::testing::Test {
 protected:
  GuestAgentTest() : peer_(std::make_shared<FakeQmpPeer>()) {
    peer_->SetResponder(fake_.Responder());
  }
  FakeAgent fake_;
  std::shared_ptr<FakeQmpPeer> peer_;
};

TEST_F(GuestAgentTest, SyncDropsGarbageAndStaleRepliesBeforeTheMarker) {
  fake_.before_sync_reply = {"garbage }{ \x01\x02", Reply("stale", 12345),
                             "{\"error\": {\"class\": \"GenericError\", \"desc\": \"parse\"}}\n"};
  GuestAgent agent(FakeTransport(peer_));
  agent.Sync(2s);
  EXPECT_NO_THROW(agent.Ping());
  EXPECT_EQ(agent.GetTime(), 1795755600123456789LL);
}

TEST_F(GuestAgentTest, ARepliesWithAnotherIdAreDropped) {
  GuestAgent agent(FakeTransport(peer_));
  agent.Sync(2s);
  peer_->SetResponder([&](const nlohmann::json& c) -> std::vector<std::string> {
    return {Reply("someone else's", 7), "\xff" + Reply("late sync", nullptr),
            Reply("mine", c["id"])};
  });
  EXPECT_EQ(agent.Execute("guest-info"), "mine");
}

TEST_F(GuestAgentTest, SilenceIsAClearErrorWithinTheDeadline) {
  peer_->SetResponder([](const nlohmann::json&) { return std::vector<std::string>{}; });
  GuestAgent agent(FakeTransport(peer_));
  const auto start = std::chrono::steady_clock::now();
  try {
    agent.Sync(300ms);
    FAIL();
  } catch (const GuestAgentUnavailable& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("org.qemu.guest_agent.0"), std::string::npos) << message;
    EXPECT_NE(message.find("qemu-guest-agent"), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(GuestAgentTest, ThePortClosingMidCommandIsADisconnect) {
  GuestAgent agent(FakeTransport(peer_));
  agent.Sync(2s);
  peer_->SetResponder([](const nlohmann::json&) { return std::vector<std::string>{}; });
  std::thread closer([&] {
    std::this_thread::sleep_for(100ms);  // the command is on its way: the port closes
    peer_->SendEof();
  });
  EXPECT_THROW(agent.Execute("guest-info", nullptr, 5s), QmpDisconnected);
  closer.join();
}

TEST_F(GuestAgentTest, ExecReturnsStatusAndBinaryOutputKeptApart) {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  fake_.programs["/bin/true"] = {0, "", ""};
  fake_.programs["/bin/sh"] = {7, binary, "to stderr\n"};
  GuestAgent agent(FakeTransport(peer_));
  EXPECT_TRUE(agent.Exec(Command({"/bin/true"})).Success());
  GuestExecRequest request = Command({"/bin/sh", "-c", "exit 7"});
  request.env = {"A=1"};
  request.input = std::string("in\0put", 6);
  const GuestExecResult r = agent.Exec(request);
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.out, binary);
  EXPECT_EQ(r.err, "to stderr\n");
  const nlohmann::json& sent = fake_.execs.back();
  EXPECT_EQ(sent["arg"], (nlohmann::json{"-c", "exit 7"}));
  EXPECT_EQ(sent["env"], (nlohmann::json{"A=1"}));
  EXPECT_EQ(Base64Decode(sent["input-data"].get<std::string>()), std::string("in\0put", 6));
  EXPECT_TRUE(sent["capture-output"].get<bool>());
}

TEST_F(GuestAgentTest, AMissingProgramIsAnAgentError) {
  GuestAgent agent(FakeTransport(peer_));
  try {
    agent.Exec(Command({"no-such-program"}));
    FAIL();
  } catch (const GuestAgentError& e) {
    EXPECT_NE(e.description().find("No such file or directory"), std::string::npos);
  }
}

TEST_F(GuestAgentTest, ACommandPastItsTimeoutIsKilledAndTheAgentStaysUsable) {
  fake_.programs["sleep"] = {0, "", "", true};
  fake_.programs["/bin/true"] = {0, "", ""};
  GuestAgent agent(FakeTransport(peer_));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(agent.Exec(Command({"sleep", "1000"}, 200ms)), GuestExecTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(fake_.execs.back()["path"], "kill");
  EXPECT_EQ(fake_.execs.back()["arg"], (nlohmann::json{"-KILL", "100"}));
  EXPECT_TRUE(agent.Exec(Command({"/bin/true"})).Success());
}

// A hostile agent (docs/security.md, "The guest agent"): every reply of the wrong shape is an
// error naming the field, never an abort; memory and time stay bounded whatever it sends.
class HostileAgentTest : public GuestAgentTest {
 protected:
  // Answers syncs; every other command gets `reply` with the command's id.
  void ReplyWith(std::function<nlohmann::json(const std::string& name)> reply) {
    peer_->SetResponder([reply](const nlohmann::json& c) -> std::vector<std::string> {
      const std::string name = c.value("execute", "");
      if (name == "guest-sync-delimited") {
        return {"\xff" + nlohmann::json{{"return", c["arguments"]["id"]}}.dump() + "\n"};
      }
      return {Reply(reply(name), c["id"])};
    });
  }
};

TEST_F(HostileAgentTest, WrongTypesInAnExecStatusAreErrorsNamingTheField) {
  const std::vector<std::pair<nlohmann::json, std::string>> statuses = {
      {{{"exited", "yes"}}, "'exited'"},
      {{{"exited", true}, {"exitcode", "0"}}, "'exitcode'"},
      {{{"exited", true}, {"exitcode", 1.5}}, "'exitcode'"},
      {{{"exited", true}, {"signal", "KILL"}}, "'signal'"},
      {{{"exited", true}, {"exitcode", 0}, {"out-data", 5}}, "'out-data'"},
      {{{"exited", true}, {"exitcode", 0}, {"out-data", "!!"}}, "base64"},
      {"not an object", "expected an object"},
  };
  for (const auto& [status, field] : statuses) {
    peer_ = std::make_shared<FakeQmpPeer>();  // the last agent shut its port down
    ReplyWith([&, reply = status](const std::string& name) -> nlohmann::json {
      if (name == "guest-exec") return {{"pid", 7}};
      return reply;
    });
    GuestAgent agent(FakeTransport(peer_));
    try {
      agent.Exec(Command({"/bin/true"}, 2s));
      ADD_FAILURE() << "no error for " << status.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
}

TEST_F(HostileAgentTest, AMissingPidOrAStringTimeIsAnErrorNotAnAbort) {
  ReplyWith([](const std::string& name) -> nlohmann::json {
    if (name == "guest-exec") return {{"pod", 7}};
    if (name == "guest-get-time") return "1795755600123456789";
    return {{"id", 5}};
  });
  GuestAgent agent(FakeTransport(peer_));
  EXPECT_THROW(agent.Exec(Command({"/bin/true"}, 2s)), MalformedJson);
  EXPECT_THROW(agent.GetTime(), MalformedJson);
  EXPECT_THROW(agent.OsInfo(), MalformedJson);  // "id": 5 where a string belongs
}

TEST_F(HostileAgentTest, AStatusOutsideEightBitsIsKeptWhole) {
  for (const std::int64_t code :
       {std::int64_t{256}, std::int64_t{1} << 32, std::int64_t{-1}, std::int64_t{3221225477}}) {
    peer_ = std::make_shared<FakeQmpPeer>();
    ReplyWith([&](const std::string& name) -> nlohmann::json {
      if (name == "guest-exec") return {{"pid", 7}};
      return {{"exited", true}, {"exitcode", code}};
    });
    GuestAgent agent(FakeTransport(peer_));
    const GuestExecResult r = agent.Exec(Command({"/bin/false"}, 2s));
    EXPECT_EQ(r.exit_code, code);
    EXPECT_FALSE(r.Success());
  }
}

TEST_F(HostileAgentTest, AFileThatNeverEndsStopsAtItsBound) {
  const std::string chunk = Base64Encode(std::string(64 * 1024, 'x'));
  ReplyWith([&](const std::string& name) -> nlohmann::json {
    if (name == "guest-file-open") return 3;
    if (name == "guest-file-read") return {{"count", 65536}, {"buf-b64", chunk}, {"eof", false}};
    return nlohmann::json::object();
  });
  GuestAgent agent(FakeTransport(peer_));
  try {
    agent.ReadFile("/dev/zero", 1 << 20, 10s);
    FAIL();
  } catch (const GuestAgentError& e) {
    EXPECT_EQ(e.error_class(), "TooLarge") << e.what();
  }
  // And within its deadline when the bound is far: the whole read, not each chunk.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(agent.ReadFile("/dev/zero", std::size_t{1} << 40, 300ms), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(HostileAgentTest, AFloodOfRepliesWithOtherIdsEndsAtTheOverallLimit) {
  GuestAgent agent(FakeTransport(peer_));
  agent.Sync(2s);
  std::atomic<bool> flooding{true};
  peer_->SetResponder([](const nlohmann::json&) { return std::vector<std::string>{}; });
  std::thread flood([&] {
    while (flooding) {
      peer_->Send(Reply("not yours", 1));
      std::this_thread::sleep_for(1ms);
    }
  });
  agent.LimitTo(std::chrono::steady_clock::now() + 300ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(agent.GetTime(), QmpTimeout);  // its own timeout is 10 s; the limit wins
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  flooding = false;
  flood.join();
}

TEST_F(HostileAgentTest, AnExchangeMayNotReadWithoutBound) {
  GuestAgent agent(FakeTransport(peer_));
  agent.Sync(2s);
  // Stale replies of 1 MiB each, more than an exchange may read: dropped one by one as they
  // come, but counted.
  const std::string big = Reply(std::string(1 << 20, 'a'), 1);
  peer_->SetResponder([&](const nlohmann::json&) { return std::vector<std::string>(100, big); });
  EXPECT_THROW(agent.Execute("guest-info", nullptr, 60s), QmpProtocolError);
}

TEST(ExitStatusTest, NoFailureEverFoldsToZero) {
  const auto status = [](std::int64_t code, int signal = 0) {
    GuestExecResult r;
    r.exit_code = code;
    r.signal = signal;
    return ExitStatusOf(r);
  };
  EXPECT_EQ(status(0), 0);
  EXPECT_EQ(status(1), 1);
  EXPECT_EQ(status(255), 255);
  EXPECT_EQ(status(256), 255);  // 256 & 0xff would be 0: a pass
  EXPECT_EQ(status(std::int64_t{1} << 32), 255);
  EXPECT_EQ(status(3221225477), 255);  // 0xC0000005, a Windows access violation
  EXPECT_EQ(status(-1), 255);
  EXPECT_EQ(status(0, 9), 137);
  EXPECT_EQ(status(0, 200), 255);
  GuestExecResult folded;
  folded.exit_code = 256;
  EXPECT_TRUE(ExitStatusFolded(folded));
  folded.exit_code = 3;
  EXPECT_FALSE(ExitStatusFolded(folded));
}

TEST(Base64Test, RoundTripsEveryLengthAndByte) {
  for (std::size_t n = 0; n < 300; ++n) {
    std::string bytes;
    for (std::size_t i = 0; i < n; ++i) bytes += static_cast<char>((i * 37 + n) & 0xff);
    EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes) << n;
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_THROW(Base64Decode("Zm9v!"), Error);
  EXPECT_THROW(Base64Decode("Z"), Error);
}

}  // namespace
}  // namespace kvmrun
