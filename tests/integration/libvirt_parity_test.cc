// `kvmrun policy --format libvirt-xml` is a promise: a libvirt that reads it starts the guest
// with the same clock as kvmrun's own argv. For every catalog OS, the real libvirtd translates
// the exported XML (`virsh domxml-to-native qemu-argv`, no guest started) and both command
// lines are reduced to what QEMU will do: the RTC's base, clock and driftfix, the kvm-pit
// policy, the HPET, kvm-clock and the Hyper-V flags, each at QEMU's default where not written.
// Meaning may not differ, and where both write the same option (the RTC's -rtc, the kvm-pit
// global) neither may the text: kvmrun writes every decision libvirt writes. Spelling differs
// only for the HPET (libvirt 9 writes -no-hpet, kvmrun -machine hpet=off) and Hyper-V flags.
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

// The value of the first `option` in `argv` ("" when absent), or of the first -global that
// starts with `prefix`.
std::string ValueOf(const std::vector<std::string>& argv, const std::string& option,
                    const std::string& prefix = "") {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == option && argv[i + 1].rfind(prefix, 0) == 0) return argv[i + 1];
  }
  return "";
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
    const std::vector<std::string> libvirt_argv = Words(native.out);
    const ClockRendering rendering = RenderClock(MakeClockPolicy(os), caps, Accel::kKvm);
    const std::vector<std::string> kvmrun_argv = ClockArgv(rendering, "host");
    const ClockMeaning libvirt = ClockMeaningOf(libvirt_argv);
    const ClockMeaning kvmrun = ClockMeaningOf(kvmrun_argv);
    EXPECT_EQ(libvirt, kvmrun) << "libvirt: " << native.out << "\nxml:\n"
                               << exported.out << "\nlibvirt: " << ToString(libvirt)
                               << "\nkvmrun:  " << ToString(kvmrun);
    // Text for text where both write the same option: the RTC and the PIT, as libvirt, Nova
    // and the seed spell them. (HPET: libvirt 9 writes the deprecated -no-hpet that QEMU 9
    // removed, kvmrun -machine hpet=off; Hyper-V: libvirt adds "=on" and kvmclock=on. Those
    // are held to meaning above.)
    // `other` stands for QEMU's defaults and writes nothing, which libvirt cannot say: it
    // spells its offset and timers out. Meaning is what other is held to.
    if (os == GuestOs::kOther) continue;
    EXPECT_EQ(ValueOf(kvmrun_argv, "-rtc"), ValueOf(libvirt_argv, "-rtc")) << native.out;
    EXPECT_EQ(ValueOf(kvmrun_argv, "-global", "kvm-pit."),
              ValueOf(libvirt_argv, "-global", "kvm-pit."))
        << native.out;
  }
}

// The reduction itself, so that a parity failure is never the parser's.
TEST(LibvirtParityTest, SpellingsOfTheSameMeaningAreEqual) {
  EXPECT_EQ(
      ClockMeaningOf({"-rtc", "base=utc", "-global", "kvm-pit.lost_tick_policy=delay", "-no-hpet",
                      "-cpu", "host,migratable=on,kvmclock=on,hv-time=on,hv-spinlocks=0x1fff"}),
      ClockMeaningOf({"-machine", "hpet=off", "-cpu", "host,hv-time,hv-spinlocks=0x1fff"}));
  EXPECT_FALSE(ClockMeaningOf({"-rtc", "driftfix=slew"}) == ClockMeaningOf({}));
  EXPECT_FALSE(ClockMeaningOf({"-cpu", "host,hv-ipi"}) == ClockMeaningOf({"-cpu", "host"}));
  EXPECT_FALSE(ClockMeaningOf({"-no-kvm-pit-reinjection"}) == ClockMeaningOf({}));
}

}  // namespace
}  // namespace kvmrun
