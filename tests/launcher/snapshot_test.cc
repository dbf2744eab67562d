// Snapshot files without QEMU: the argv a restore must match, the header read back and every
// way a file is refused (not a snapshot, truncated, damaged, another format), and what a
// restore is refused for (QEMU version, accelerator, an argument, a disk missing or changed).
#include "kvmrun/snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "kvmrun/error.h"
#include "tests/support/qemu_process.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

// The message of the UsageError `f` throws ("" when it throws none).
template <typename F>
std::string Refusal(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

class SnapshotFileTest : public ::testing::Test {
 protected:
  SnapshotFileTest() {
    header_.identity.qemu = "/usr/bin/qemu-system-x86_64";
    header_.identity.qemu_version = "7.2.22";
    header_.identity.accel = "tcg";
    header_.identity.os = "linux";
    header_.identity.argv = {"qemu", "-accel", "tcg", "-m", "512", "-cpu", "max"};
    header_.saved_at = "2026-11-30T20:00:00Z";
    header_.saved_realtime_ns = 1'800'000'000'000'000'000;
  }
  // A snapshot file at `name` whose state is `state`, the header made to match it.
  std::string Write(const std::string& name, const std::string& state) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << state;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    header_.state_bytes = state.size();
    header_.checksum = StateChecksum(fd, 0, state.size());
    close(fd);
    std::ofstream out(path, std::ios::trunc | std::ios::binary);
    out << EncodeSnapshotHeader(header_) << state;
    return path;
  }

  testing::TempDir dir_;
  SnapshotHeader header_;
};

TEST(SnapshotArgvTest, DropsWhatIsPrivateToOneRun) {
  const std::vector<std::string> argv = {
      "/opt/qemu/bin/qemu-system-x86_64",
      "-name",
      "guest=ci-7",
      "-m",
      "512",
      "-chardev",
      "socket,id=kvmrun-qmp-public,path=/home/u/vm.sock,server=on,wait=off",
      "-mon",
      "chardev=kvmrun-qmp-public,mode=control",
      "-chardev",
      "socket,id=kvmrun-agent,path=/run/user/1/kvmrun-ab12/agent.sock,server=on,wait=off",
      "-no-reboot"};
  EXPECT_EQ(
      SnapshotArgv(argv, "/run/user/1/kvmrun-ab12"),
      (std::vector<std::string>{
          "qemu", "-m", "512", "-chardev",
          "socket,id=kvmrun-agent,path=$RUNTIME_DIR/agent.sock,server=on,wait=off", "-no-reboot"}));
}

TEST_F(SnapshotFileTest, AHeaderReadsBackAsWritten) {
  header_.identity.disks = {{"/d/disk.img", 1 << 20, 1234}};
  header_.identity.agent = true;
  const std::string path = Write("ok.kvmrun", std::string(100000, 'x'));
  const SnapshotHeader read = ReadSnapshotHeader(path);
  EXPECT_EQ(SnapshotHeaderToJson(read), SnapshotHeaderToJson(header_));
  EXPECT_EQ(read.state_bytes, 100000u);
  EXPECT_NO_THROW(VerifySnapshotChecksum(path, read));
}

TEST_F(SnapshotFileTest, FilesThatAreNotWholeSnapshotsAreRefusedSayingWhy) {
  const std::string state(200000, 's');
  const std::string path = Write("good.kvmrun", state);
  std::ifstream in(path, std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), {});

  const auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir_.path() + "/" + name, std::ios::binary) << content;
    return dir_.path() + "/" + name;
  };
  EXPECT_NE(Refusal([&] { ReadSnapshotHeader(dir_.path() + "/none"); }).find("cannot be opened"),
            std::string::npos);
  EXPECT_NE(Refusal([&] {
              ReadSnapshotHeader(write("text", "hello\n"));
            }).find("is not a kvmrun snapshot"),
            std::string::npos);
  EXPECT_NE(Refusal([&] {
              ReadSnapshotHeader(write("short", whole.substr(0, 1000)));
            }).find("shorter than its 65536-byte header"),
            std::string::npos);
  EXPECT_NE(Refusal([&] {
              ReadSnapshotHeader(write("cut", whole.substr(0, whole.size() - 1)));
            }).find("is truncated: 265535 bytes where the header says 265536"),
            std::string::npos);
  EXPECT_NE(Refusal([&] {
              ReadSnapshotHeader(write("long", whole + "x"));
            }).find("longer than its header says"),
            std::string::npos);
  std::string garbled = whole;
  garbled.replace(garbled.find("\"state_bytes\""), 5, "\"XXXX");
  EXPECT_NE(
      Refusal([&] { ReadSnapshotHeader(write("garbled", garbled)); }).find("has a corrupt header"),
      std::string::npos);
  std::string future = whole;
  future.replace(future.find("\"format\":1"), 10, "\"format\":9");
  EXPECT_NE(Refusal([&] {
              ReadSnapshotHeader(write("future", future));
            }).find("has format 9; this kvmrun reads format 1"),
            std::string::npos);

  // One byte of the state changed: the header is fine, the checksum is not.
  std::string damaged = whole;
  damaged[kSnapshotHeaderBytes + 123456] ^= 0x01;
  const std::string damaged_path = write("damaged", damaged);
  const SnapshotHeader header = ReadSnapshotHeader(damaged_path);
  EXPECT_NE(Refusal([&] { VerifySnapshotChecksum(damaged_path, header); }).find("is corrupt"),
            std::string::npos);
}

TEST_F(SnapshotFileTest, TheChecksumSeesEveryByteAndTheLength) {
  const std::string a = Write("a", std::string(1000, '\0'));
  const std::string a_sum = header_.checksum;
  Write("b", std::string(1001, '\0'));
  EXPECT_NE(header_.checksum, a_sum);  // zeros of another length
  for (std::size_t at : {0u, 31u, 32u, 999u}) {
    std::string state(1000, '\0');
    state[at] = 1;
    Write("c", state);
    EXPECT_NE(header_.checksum, a_sum) << at;
  }
  EXPECT_EQ(header_.checksum.size(), 16u);
}

TEST_F(SnapshotFileTest, ARestoreIsRefusedForAnotherQemuAccelArgumentOrDisk) {
  const std::string disk = dir_.path() + "/disk.img";
  std::ofstream(disk) << std::string(4096, '\0');
  header_.identity.disks = {DescribeDisk(disk)};
  SnapshotIdentity now = header_.identity;
  EXPECT_EQ(Refusal([&] { CheckSnapshotMatches(header_, now, "s"); }), "");

  now.qemu_version = "10.0.2";
  EXPECT_NE(Refusal([&] { CheckSnapshotMatches(header_, now, "s"); })
                .find("it was saved by QEMU 7.2.22 (/usr/bin/qemu-system-x86_64), this is QEMU "
                      "10.0.2"),
            std::string::npos);
  now = header_.identity;
  now.accel = "kvm";
  EXPECT_NE(Refusal([&] {
              CheckSnapshotMatches(header_, now, "s");
            }).find("saved under tcg, this VM runs under kvm"),
            std::string::npos);
  now = header_.identity;
  now.argv[4] = "1024";
  EXPECT_NE(Refusal([&] {
              CheckSnapshotMatches(header_, now, "s");
            }).find("the snapshot has '-m 512' where this VM has '-m 1024'"),
            std::string::npos);
  now = header_.identity;
  now.argv.push_back("-no-reboot");
  EXPECT_NE(Refusal([&] {
              CheckSnapshotMatches(header_, now, "s");
            }).find("the snapshot has '(nothing)' where this VM has '-no-reboot'"),
            std::string::npos);

  now = header_.identity;
  std::this_thread::sleep_for(10ms);
  std::ofstream(disk, std::ios::app) << "x";
  EXPECT_NE(Refusal([&] {
              CheckSnapshotMatches(header_, now, "s");
            }).find("its disk '" + disk + "' changed since the snapshot was saved"),
            std::string::npos);
  unlink(disk.c_str());
  EXPECT_NE(Refusal([&] {
              CheckSnapshotMatches(header_, now, "s");
            }).find("its disk '" + disk + "' is missing"),
            std::string::npos);
}

// A file saved when kvmrun left QEMU's defaults unwritten (`-rtc driftfix=slew`, the PIT after
// the RTC) restores under today's spelling of the same policy; a different clock is refused,
// naming the policy it was saved with.
TEST_F(SnapshotFileTest, AnOlderSpellingOfTheSamePolicyRestoresAnotherClockDoesNot) {
  header_.identity.argv = {"qemu", "-accel", "tcg",           "-m",       "512",     "-cpu",
                           "max",  "-rtc",   "driftfix=slew", "-machine", "hpet=off"};
  ClockOverrides o;
  o.rtc_policy = RtcTickPolicy::kDiscard;
  header_.identity.policy = MakeClockPolicy(GuestOs::kLinux, o);
  SnapshotIdentity now = header_.identity;
  now.argv = {
      "qemu",     "-accel",  "tcg", "-m", "512", "-cpu", "max", "-rtc", "base=utc,driftfix=slew",
      "-machine", "hpet=off"};
  EXPECT_EQ(Refusal([&] { CheckSnapshotMatches(header_, now, "s"); }), "");

  now.argv[8] = "base=utc,driftfix=none";
  const std::string refusal = Refusal([&] { CheckSnapshotMatches(header_, now, "s"); });
  EXPECT_NE(refusal.find("it was saved with another clock"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("(linux, rtc-policy=discard)"), std::string::npos) << refusal;

  // The policy travels in the header and comes back whole.
  const SnapshotIdentity back = SnapshotIdentityFromJson(
      nlohmann::json::parse(SnapshotIdentityToJson(header_.identity).dump()));
  ASSERT_TRUE(back.policy.has_value());
  EXPECT_EQ(*back.policy, *header_.identity.policy);
}

}  // namespace
}  // namespace kvmrun
