#include "cli/cli_common.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "core/safe_text.h"
#include "kvmrun/clock_verify.h"
#include "kvmrun/error.h"
#include "kvmrun/policy_format.h"
#include "kvmrun/stop_requests.h"
#include "kvmrun/vm_registry.h"
#include "policy/names.h"

namespace kvmrun::cli {

namespace {

UsageError NoSuchVm(const std::string& name) {
  return UsageError("no running VM called '" + name + "'; 'kvmrun ps' lists them");
}

// Boost.Program_options 1.81 builds its error messages by replacing placeholders such as
// %canonical_option% and %value% until none is left, so an argument containing one makes
// `kvmrun run -o%canonical_option%` loop forever (found by the CLI fuzzer). Arguments reach
// Boost with '%' swapped for a byte no argument may contain, and values and messages are
// swapped back.
constexpr char kPercentStandIn = '\x1a';

std::string Swap(std::string text, char from, char to) {
  for (char& c : text) c = c == from ? to : c;
  return text;
}

void RestorePercents(po::variables_map& vm) {
  for (auto& [name, variable] : vm) {
    boost::any& value = variable.value();
    if (auto* text = boost::any_cast<std::string>(&value)) {
      *text = Swap(*text, kPercentStandIn, '%');
    } else if (auto* texts = boost::any_cast<std::vector<std::string>>(&value)) {
      for (std::string& t : *texts) t = Swap(t, kPercentStandIn, '%');
    }
  }
}

}  // namespace

Args WithNewOptionNames(
    Args args, std::initializer_list<std::pair<std::string_view, std::string_view>> renamed) {
  for (std::string& arg : args) {
    if (arg == "--") break;
    for (const auto& [old_name, new_name] : renamed) {
      const std::string old_flag = "--" + std::string(old_name);
      if (arg == old_flag || arg.rfind(old_flag + "=", 0) == 0) {
        arg = "--" + std::string(new_name) + arg.substr(old_flag.size());
      }
    }
  }
  return args;
}

po::variables_map Parse(const Args& args, const po::options_description& options,
                        const po::positional_options_description* positional) {
  Args escaped;
  for (const std::string& arg : args) {
    if (arg.find(kPercentStandIn) != std::string::npos) {
      throw UsageError("argument '" + Swap(arg, kPercentStandIn, '?') +
                       "' contains the control character 0x1a");
    }
    escaped.push_back(Swap(arg, '%', kPercentStandIn));
  }
  po::variables_map vm;
  try {
    po::command_line_parser parser(escaped);
    parser.options(options);
    if (positional != nullptr) parser.positional(*positional);
    // Long options only (--name value or --name=value); no guessing of abbreviations, so a
    // future option can never change what an existing command line means.
    parser.style(po::command_line_style::unix_style & ~po::command_line_style::allow_guessing);
    const po::parsed_options parsed = parser.run();
    // Without a positional description Boost drops words that are not options; a stray word
    // ("kvmrun run --os linux vmlinuz") is a mistake to report, not to ignore.
    if (positional == nullptr) {
      for (const po::option& option : parsed.options) {
        if (option.position_key >= 0) {
          throw UsageError(
              "unexpected argument '" +
              Swap(option.value.empty() ? "" : option.value.front(), kPercentStandIn, '%') +
              "'; every value belongs to an option (see --help)");
        }
      }
    }
    po::store(parsed, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(Swap(e.what(), kPercentStandIn, '%'));
  }
  RestorePercents(vm);
  return vm;
}

std::string FlagFor(std::string_view field) {
  // Fields whose flag is not simply the field with '-' for '_'.
  static const std::pair<std::string_view, std::string_view> kRenamed[] = {
      {"memory_mib", "--memory"},    {"cpu_model", "--cpu"},
      {"disks", "--disk"},           {"shares", "--share"},
      {"extra_args", "--extra-arg"}, {"firmware_dirs", "--firmware-dir"},
      {"forwards", "--forward"},     {"cdroms", "--cdrom"},
      {"duration_s", "--duration"},  {"rate_hz", "--rate"},
      {"results_dir", "--results"},
  };
  for (const auto& [name, flag] : kRenamed) {
    if (name == field) return std::string(flag);
  }
  if (field.rfind("--", 0) == 0) return std::string(field);  // already a flag
  std::string flag = "--";
  for (char c : field) flag += c == '_' ? '-' : c;
  return flag;
}

std::string CliMessage(const UsageError& error) {
  if (error.field().empty() || error.field()[0] == '$') return error.what();
  return FlagFor(error.field()) + ": " + error.detail();
}

int ReportCurrentException(const std::string& prefix, std::ostream& out) {
  // Messages quote what files, guests and peers said: shown escaped, never obeyed.
  const auto safe = [](std::string_view text) { return SafeText(text, KeepLayout::kNewlines); };
  try {
    throw;
  } catch (const UsageError& e) {
    out << prefix << safe(CliMessage(e)) << "\n";
    return kExitUsage;
  } catch (const ClockMismatchError& e) {
    out << prefix << safe(e.what()) << "\n" << safe(FormatClockReport(e.report()));
    return kExitMismatch;
  } catch (const Interrupted& e) {
    out << prefix << safe(e.what()) << "; nothing was left running\n";
    return kExitFailure;
  } catch (const VmError& e) {
    out << prefix << safe(e.what()) << "\n";
    if (!e.argv().empty()) out << "  command: " << safe(ShellJoin(e.argv())) << "\n";
    if (!e.stderr_tail().empty()) out << "  QEMU stderr:\n" << safe(e.stderr_tail()) << "\n";
    if (!e.console_tail().empty()) {
      out << "  console (last lines):\n" << safe(e.console_tail()) << "\n";
    }
    return kExitFailure;
  } catch (const Error& e) {
    out << prefix << safe(e.what()) << "\n";
    return kExitFailure;
  } catch (const std::bad_alloc&) {
    out << prefix << "out of memory\n";
    return kExitFailure;
  } catch (const std::exception& e) {
    // Not one of kvmrun's own errors: a bug or a case no check caught (a peer's JSON of a shape
    // nobody read through JsonFields). Still an honest failure, never std::terminate.
    out << prefix << "internal error: " << safe(e.what()) << "\n";
    return kExitFailure;
  } catch (...) {
    out << prefix << "internal error: an unknown exception\n";
    return kExitFailure;
  }
}

namespace {

// Boost prints each option's description at one column, wrapping it at 80 columns; the hand
// line breaks in the descriptions then come out as ragged short lines. Each description is
// joined back into one paragraph and wrapped again at that column.
std::string RewrapOptions(const std::string& printed) {
  std::vector<std::string> lines;
  std::istringstream in(printed);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  // The description column: where continuation lines start (all at the same indentation).
  std::size_t column = std::string::npos;
  for (const std::string& line : lines) {
    const std::size_t indent = line.find_first_not_of(' ');
    if (indent != std::string::npos && indent > 4) column = std::min(column, indent);
  }
  if (column == std::string::npos) return printed;
  constexpr std::size_t kWidth = 80;
  const std::size_t room = kWidth > column + 20 ? kWidth - column : 20;
  std::string out;
  std::string name;
  std::vector<std::string> words;
  const auto flush = [&] {
    if (name.empty() && words.empty()) return;
    std::string line = name;
    bool first_on_line = true;
    if (line.size() >= column) {  // a name too long for its column: the text starts below
      out += line + "\n";
      line.clear();
    }
    for (const std::string& word : words) {
      const std::size_t used = line.size() > column ? line.size() - column : 0;
      if (!first_on_line && used + 1 + word.size() > room) {
        out += line + "\n";
        line.clear();
        first_on_line = true;
      }
      if (line.size() < column) line.resize(column, ' ');
      if (!first_on_line) line += ' ';
      line += word;
      first_on_line = false;
    }
    out += line + "\n";
    name.clear();
    words.clear();
  };
  for (const std::string& line : lines) {
    const bool option = line.rfind("  -", 0) == 0;
    const bool continuation =
        !option && line.size() > column && line.find_first_not_of(' ') == column && !name.empty();
    if (!option && !continuation) {
      flush();
      out += line + "\n";
      continue;
    }
    std::string text;
    if (option) {
      flush();
      const std::size_t end = line.find("  ", 2);  // the name ends at two spaces
      const std::size_t text_at =
          end == std::string::npos ? std::string::npos : line.find_first_not_of(' ', end);
      name = line.substr(0, end == std::string::npos ? line.size() : end);
      if (text_at != std::string::npos) text = line.substr(text_at);
    } else {
      text = line.substr(column);
    }
    std::istringstream split(text);
    for (std::string word; split >> word;) words.push_back(word);
  }
  flush();
  return out;
}

}  // namespace

std::string HelpText(const std::string& usage, const std::string& summary,
                     const po::options_description& options,
                     const po::positional_options_description* positional) {
  std::set<std::string> words;  // the options behind positional words
  if (positional) {
    const unsigned count = std::min(positional->max_total_count(), 16u);
    for (unsigned i = 0; i < count; ++i) words.insert(positional->name_for_position(i));
  }
  po::options_description shown("Options");
  for (const auto& option : options.options()) {
    if (!words.count(option->long_name())) shown.add(option);
  }
  // One line per form of the command, the second and later as "  or:  kvmrun ...": the GNU
  // layout, which help2man turns into the man page's SYNOPSIS. A line that does not start a
  // form continues the one before.
  std::ostringstream out;
  out << "Usage:";
  std::istringstream lines(usage);
  bool first = true;
  for (std::string line; std::getline(lines, line);) {
    const std::size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    const std::string text = line.substr(start);
    if (first || text.rfind("kvmrun ", 0) != 0) {
      out << " " << text;
    } else {
      out << "\n  or:  " << text;
    }
    first = false;
  }
  std::ostringstream printed;
  printed << shown;
  out << "\n\n" << summary << "\n\n" << RewrapOptions(printed.str());
  return out.str();
}

void AddOverrideOptions(po::options_description& options) {
  const std::string toggles = JoinNames(kAllToggles, "|");
  // clang-format off
  options.add_options()
      ("rtc-base", po::value<std::string>()->value_name(JoinNames(kAllRtcBases, "|")),
       "override where the RTC starts")
      ("rtc-policy", po::value<std::string>()->value_name(JoinNames(kAllRtcTickPolicies, "|")),
       "override the RTC lost-tick policy (slew = -rtc driftfix=slew)")
      ("rtc-clock", po::value<std::string>()->value_name(JoinNames(kAllRtcClocks, "|")),
       "override the clock that drives the RTC: host follows the host's wall clock, steps "
       "included; rt never steps; vm stops with the VM")
      ("pit-policy", po::value<std::string>()->value_name(JoinNames(kAllPitTickPolicies, "|")),
       "override the KVM PIT lost-tick policy (delay re-injects, discard does not)")
      ("hpet", po::value<std::string>()->value_name(toggles), "override the HPET")
      ("hv-time", po::value<std::string>()->value_name(toggles),
       "override the Hyper-V reference clock (hv-time)")
      ("hyperv", po::value<std::string>()->value_name(JoinNames(kAllHypervSets, "|")),
       "override the other Hyper-V enlightenments: vista = relaxed, vapic, spinlocks, vpindex, "
       "runtime, reset, frequencies, tlbflush; full adds synic, stimer (needs hv-time), ipi")
      ("kvmclock", po::value<std::string>()->value_name(toggles), "override kvm-clock");
  // clang-format on
}

ClockOverrides GetOverrides(const po::variables_map& vm) {
  const auto given = [&](const char* name) -> const std::string* {
    return vm.count(name) ? &vm[name].as<std::string>() : nullptr;
  };
  ClockOverrides o;
  if (auto v = given("rtc-base")) o.rtc_base = ParseRtcBase(*v);
  if (auto v = given("rtc-policy")) o.rtc_policy = ParseRtcTickPolicy(*v);
  if (auto v = given("rtc-clock")) o.rtc_clock = ParseRtcClock(*v, "rtc-clock");
  if (auto v = given("pit-policy")) o.pit_policy = ParsePitTickPolicy(*v);
  if (auto v = given("hpet")) o.hpet = ParseToggle(*v, "hpet");
  if (auto v = given("hv-time")) o.hv_time = ParseToggle(*v, "hv_time");
  if (auto v = given("hyperv")) o.hyperv = ParseHypervSet(*v, "hyperv");
  if (auto v = given("kvmclock")) o.kvmclock = ParseToggle(*v, "kvmclock");
  return o;
}

std::chrono::milliseconds PositiveSeconds(double seconds, const std::string& what) {
  if (!(seconds > 0) || seconds > 1e7) {
    throw UsageError(what + ": invalid value '" + std::to_string(seconds) +
                     "'; valid: a number of seconds greater than 0");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

std::chrono::milliseconds NonNegativeSeconds(double seconds, const std::string& what) {
  if (!(seconds >= 0) || seconds > 1e7) {
    throw UsageError(what + ": invalid value '" + std::to_string(seconds) +
                     "'; valid: a number of seconds, 0 or more");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

std::chrono::milliseconds WaitOption(const po::variables_map& vm) {
  const double seconds = vm["wait"].as<double>();
  if (!(seconds >= 0) || seconds > 3600) {
    throw UsageError("--wait: invalid value '" + std::to_string(seconds) +
                     "'; valid: 0 to 3600 seconds");
  }
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

VmTarget TargetOf(const std::string& path_or_name) {
  VmTarget target;
  target.qmp_socket = path_or_name;  // a relative path, or a name nobody runs: connecting says
  if (path_or_name.find('/') != std::string::npos) return target;
  if (const auto vm = FindNamedVm(path_or_name)) {
    target.name = path_or_name;
    target.qmp_socket = vm->info.value("qmp_socket", path_or_name);
    target.agent_socket = vm->info.value("agent_socket", "");
    target.os = vm->info.value("os", "");
    if (const auto policy = vm->info.find("policy"); policy != vm->info.end()) {
      try {
        target.policy = ClockPolicyFromJson(*policy);
        target.os = std::string(ToString(target.policy->os));
      } catch (const Error&) {
        // A record from before policies were kept, or damaged: the OS alone says what it can.
      }
    }
  }
  return target;
}

std::string SecondsText(std::chrono::milliseconds ms) {
  std::ostringstream text;
  text.precision(ms < std::chrono::seconds(10) ? 2 : 1);
  text << std::fixed << static_cast<double>(ms.count()) / 1000.0 << " s";
  return text.str();
}

void StderrLine(std::string_view line) {
  std::string text(line);
  text += '\n';
  // std::cerr is unbuffered: one write() call carries the whole text to the stdio stream.
  std::cerr.write(text.data(), static_cast<std::streamsize>(text.size()));
  std::cerr.flush();
}

std::string RequiredName(const po::variables_map& vm) {
  if (!vm.count("name")) throw UsageError("a NAME is required; 'kvmrun ps' lists the VMs");
  return vm["name"].as<std::string>();
}

NamedVm RunningVm(const std::string& name) {
  std::optional<NamedVm> found = FindNamedVm(name);
  if (!found) throw NoSuchVm(name);
  return std::move(*found);
}

std::string AgentSocketOf(const std::string& name) {
  const VmTarget target = TargetOf(name);
  if (target.name.empty()) throw NoSuchVm(name);
  if (target.agent_socket.empty()) {
    throw Error("VM '" + name + "' has no guest agent port (it was started with --no-agent)");
  }
  return target.agent_socket;
}

std::string QmpSocketOf(const std::string& path_or_name) {
  return TargetOf(path_or_name).qmp_socket;
}

void AddGuestClockOptions(po::options_description& options, double agent_wait_s) {
  // clang-format off
  options.add_options()
      ("max-offset", po::value<double>()->default_value(2)->value_name("S"),
       "the guest's wall clock may be this many seconds from the host's (beyond: a mismatch,\n"
       "exit 3); 2 s covers the RTC's one-second resolution at boot")
      ("agent-wait", po::value<double>()->default_value(agent_wait_s)->value_name("S"),
       "how long the guest agent may take, to answer at all and then to give every reading\n"
       "(one deadline for the whole exchange)");
  // clang-format on
}

std::chrono::milliseconds MaxOffsetOption(const po::variables_map& vm) {
  return PositiveSeconds(vm["max-offset"].as<double>(), "--max-offset");
}

std::chrono::milliseconds AgentWaitOption(const po::variables_map& vm) {
  return PositiveSeconds(vm["agent-wait"].as<double>(), "--agent-wait");
}

std::string UtcTimestamp() {
  char text[32];
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return text;
}

void WriteTextFile(const std::string& path, const std::string& text, const std::string& what) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  if (!out) throw Error(what + " '" + path + "': cannot be written: " + std::strerror(errno));
}

std::string HostName() {
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  return host;
}

void RejectConflicts(const po::variables_map& vm, const std::vector<std::string>& names) {
  std::string given;
  int count = 0;
  for (const std::string& name : names) {
    if (vm.count(name) == 0 || vm[name].defaulted()) continue;
    given += (count++ ? " and --" : "--") + name;
  }
  if (count > 1) throw UsageError(given + " cannot be used together");
}

}  // namespace kvmrun::cli
