// `kvmrun policy --format libvirt-xml` is a promise: a libvirt that reads it starts the guest
// with the same clock as kvmrun's own argv. For every catalog OS, the real libvirtd translates
// the exported XML (`virsh domxml-to-native qemu-argv`, no guest started) and both command
// lines are reduced to what QEMU will do: the RTC's base, clock and driftfix, the kvm-pit
// policy, the HPET, kvm-clock and the Hyper-V flags, each at QEMU's default where not written.
// Spelling may differ (libvirt 9 writes -no-hpet and kvm-pit delay; kvmrun writes
// -machine hpet=off and leaves delay to QEMU); meaning may not.
//
// Needs a running libvirtd with the QEMU driver (scripts/test starts one, as bench/run does);
// skipped, with the reason, where there is none.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "kvmrun/clock_rendering.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/qemu_probe.h"
#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"
#include "tests/support/test_names.h"

namespace kvmrun {
namespace {

using testing::RunCommand;

constexpr char kVirsh[] = "/usr/bin/virsh";
constexpr char kQemu[] = "/usr/bin/qemu-system-x86_64";

// What QEMU does with the clock, whatever the spelling.
struct ClockMeaning {
  std::string rtc_base = "utc";
  std::string rtc_clock = "host";
  std::string rtc_driftfix = "none";
  std::string pit = "delay";
  bool hpet = true;
  bool kvmclock = true;
  std::set<std::string> hyperv;  // "hv-time", "hv-spinlocks=0x1fff", ...

  friend bool operator==(const ClockMeaning&, const ClockMeaning&) = default;
};

std::ostream& operator<<(std::ostream& out, const ClockMeaning& m) {
  out << "rtc base=" << m.rtc_base << " clock=" << m.rtc_clock << " driftfix=" << m.rtc_driftfix
      << ", pit " << m.pit << ", hpet " << (m.hpet ? "on" : "off") << ", kvmclock "
      << (m.kvmclock ? "on" : "off") << ", hyperv {";
  for (const std::string& f : m.hyperv) out << " " << f;
  return out << " }";
}

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) parts.push_back(part);
  return parts;
}

// The later of repeated options wins, as in QEMU.
ClockMeaning MeaningOf(const std::vector<std::string>& argv) {
  ClockMeaning m;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    const std::string next = i + 1 < argv.size() ? argv[i + 1] : "";
    if (arg == "-no-hpet") m.hpet = false;
    if (arg == "-no-kvm-pit-reinjection") m.pit = "discard";
    if (arg == "-rtc") {
      for (const std::string& part : SplitCommas(next)) {
        const auto eq = part.find('=');
        const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
        if (key == "base") m.rtc_base = value;
        if (key == "clock") m.rtc_clock = value;
        if (key == "driftfix") m.rtc_driftfix = value;
      }
    }
    if (arg == "-global" && next.rfind("kvm-pit.lost_tick_policy=", 0) == 0) {
      m.pit = next.substr(next.find('=') + 1);
    }
    if (arg == "-machine") {
      for (const std::string& part : SplitCommas(next)) {
        if (part == "hpet=off") m.hpet = false;
        if (part == "hpet=on") m.hpet = true;
      }
    }
    if (arg == "-cpu") {
      m.hyperv.clear();
      for (const std::string& part : SplitCommas(next)) {
        if (part == "kvmclock=off") m.kvmclock = false;
        if (part == "kvmclock=on" || part == "kvmclock") m.kvmclock = true;
        if (part.rfind("hv-", 0) != 0) continue;
        if (part.size() > 3 && part.substr(part.size() - 3) == "=on") {
          m.hyperv.insert(part.substr(0, part.size() - 3));
        } else if (part.find("=off") == std::string::npos) {
          m.hyperv.insert(part);
        }
      }
    }
  }
  return m;
}

// virsh prints the environment, then the command, on one line, words separated by spaces;
// nothing in these domains has a space inside an argument.
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

std::string LibvirtUnavailable() {
  if (!std::filesystem::exists(kVirsh)) return "virsh is not installed";
  if (!std::filesystem::exists(kQemu)) return std::string(kQemu) + " is not installed";
  const auto version = RunCommand({kVirsh, "-c", "qemu:///system", "version"});
  if (version.exit_code != 0) {
    return "no libvirtd answers on qemu:///system (scripts/test starts one): " + version.err;
  }
  return "";
}

// The domain around the exported <clock>. libvirt translates a type='kvm' domain only where it
// can use KVM (/dev/kvm present and usable by its QEMU); elsewhere the same XML goes into a
// type='qemu' domain, which libvirt 9 translates into the same clock options (kvm-pit policy,
// kvmclock and Hyper-V CPU flags included) under -accel tcg. The clock is what is compared, so
// the parity holds either way; the CPU model (host or max) is not part of the meaning.
struct DomainShell {
  std::string type;
  std::string cpu;
};

DomainShell ShellForThisHost() {
  const auto kvm = RunCommand({kVirsh, "-c", "qemu:///system", "domcapabilities", "--virttype",
                               "kvm", "--emulatorbin", kQemu, "--arch", "x86_64"});
  if (kvm.exit_code == 0) return {"kvm", "<cpu mode='host-passthrough'/>"};
  std::cout << "libvirt has no KVM here (" << kvm.err.substr(0, kvm.err.find('\n'))
            << "); translating the clock in a type='qemu' domain\n";
  return {"qemu", "<cpu mode='maximum'/>"};
}

TEST(LibvirtParityTest, LibvirtTurnsKvmrunsXmlIntoKvmrunsClockForEveryOs) {
  if (const std::string why = LibvirtUnavailable(); !why.empty()) GTEST_SKIP() << why;
  auto runner = MakeProcessRunner();
  const QemuCapabilities caps = ProbeQemu(kQemu, *runner);
  const DomainShell shell = ShellForThisHost();
  testing::TempDir dir;
  for (const GuestOs os : testing::AllGuestOs()) {
    const std::string name(ToString(os));
    SCOPED_TRACE(name);
    const auto exported = testing::RunKvmrun(
        {"policy", "--os", name, "--qemu", kQemu, "--accel", "kvm", "--format", "libvirt-xml"});
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    const std::string xml_path = dir.path() + "/" + name + ".xml";
    std::ofstream(xml_path) << "<domain type='" << shell.type << "'>\n"
                            << "  <name>kvmrun-parity</name>\n"
                            << "  <memory unit='MiB'>64</memory>\n"
                            << "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
                            << "  " << shell.cpu << "\n"
                            << exported.out << "  <devices><emulator>" << kQemu
                            << "</emulator></devices>\n</domain>\n";
    const auto native =
        RunCommand({kVirsh, "-c", "qemu:///system", "domxml-to-native", "qemu-argv", xml_path});
    ASSERT_EQ(native.exit_code, 0) << native.err << "\n" << exported.out;
    const ClockMeaning libvirt = MeaningOf(Words(native.out));

    const ClockRendering rendering = RenderClock(MakeClockPolicy(os), caps, Accel::kKvm);
    const ClockMeaning kvmrun = MeaningOf(ClockArgv(rendering, "host"));
    EXPECT_EQ(libvirt, kvmrun) << "libvirt: " << native.out << "\nxml:\n" << exported.out;
  }
}

// The reduction itself, so that a parity failure is never the parser's.
TEST(LibvirtParityTest, SpellingsOfTheSameMeaningAreEqual) {
  EXPECT_EQ(MeaningOf({"-rtc", "base=utc", "-global", "kvm-pit.lost_tick_policy=delay", "-no-hpet",
                       "-cpu", "host,migratable=on,kvmclock=on,hv-time=on,hv-spinlocks=0x1fff"}),
            MeaningOf({"-machine", "hpet=off", "-cpu", "host,hv-time,hv-spinlocks=0x1fff"}));
  EXPECT_FALSE(MeaningOf({"-rtc", "driftfix=slew"}) == MeaningOf({}));
  EXPECT_FALSE(MeaningOf({"-cpu", "host,hv-ipi"}) == MeaningOf({"-cpu", "host"}));
  EXPECT_FALSE(MeaningOf({"-no-kvm-pit-reinjection"}) == MeaningOf({}));
}

}  // namespace
}  // namespace kvmrun
