#include "kvmrun/probe_guest.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "kvmrun/error.h"
#include "kvmrun/qemu_probe.h"
#include "launcher/run_capture.h"

namespace kvmrun {
namespace {

namespace fs = std::filesystem;

constexpr char kBuilder[] = "make-test-guest";
constexpr char kProbe[] = "kvmrun-probe";

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

ProbeGuest In(const std::string& dir) { return {dir + "/vmlinuz", dir + "/initramfs.cpio"}; }

bool Complete(const ProbeGuest& guest) {
  std::error_code ec;
  return fs::is_regular_file(guest.kernel, ec) && fs::is_regular_file(guest.initrd, ec);
}

// The last non-empty line of `text`, for error messages.
std::string LastLine(const std::string& text) {
  const std::size_t end = text.find_last_not_of("\n");
  if (end == std::string::npos) return "";
  const std::size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1,
                     end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

std::string DefaultProbeGuestDir() { return DefaultCacheDir() + "/probe-guest"; }

std::string InstalledToolsDir() { return KVMRUN_INSTALL_LIBEXEC_DIR; }

ProbeGuest FindOrBuildProbeGuest(const ProbeGuestOptions& options) {
  std::string dir = options.dir;
  if (dir.empty()) {
    const char* env = std::getenv("KVMRUN_GUEST_DIR");
    dir = env != nullptr && *env != '\0' ? env : DefaultProbeGuestDir();
  }
  const ProbeGuest guest = In(dir);
  const std::string tools = options.tools_dir.empty() ? InstalledToolsDir() : options.tools_dir;
  const std::string builder = tools + "/" + kBuilder;
  const std::string probe = tools + "/" + kProbe;
  if (!Executable(builder) || !Executable(probe)) {
    if (Complete(guest)) return guest;
    throw Error("no probe guest in " + dir + ", and no builder to make one (" + builder + " and " +
                probe +
                " are installed with kvmrun); reinstall kvmrun or point "
                "KVMRUN_GUEST_DIR at a probe guest");
  }
  SpawnRequest request;
  request.executable = builder;
  request.argv = {builder, "--probe", probe};
  request.extra_env = {"KVMRUN_TEST_GUEST_DIR=" + dir};
  request.umask = 022;  // the guest's files need their x bits (a directory without one is lost)
  // Line by line as the builder speaks would be nicer; its few lines come within a minute.
  const std::shared_ptr<ProcessRunner> runner =
      options.runner ? options.runner : MakeProcessRunner();
  if (options.on_progress && !Complete(guest)) {
    options.on_progress("building the probe guest in " + dir + " (once; about a minute)");
  }
  const CapturedRun run =
      RunAndCapture(*runner, request, std::chrono::minutes(10), 1 << 20, options.stop);
  if (options.on_progress) {
    std::size_t from = 0, newline;
    while ((newline = run.err.find('\n', from)) != std::string::npos) {
      options.on_progress(run.err.substr(from, newline - from));
      from = newline + 1;
    }
  }
  if (run.timed_out || !run.status.Success() || !Complete(guest)) {
    throw Error("building the probe guest with " + builder + " failed (" +
                (run.timed_out ? "it hung" : run.status.ToString()) + ")" +
                (run.err.empty() ? "" : ": " + LastLine(run.err)));
  }
  return guest;
}

}  // namespace kvmrun
