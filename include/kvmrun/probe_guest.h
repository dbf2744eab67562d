// The probe guest that `timecheck` boots: a Debian kernel and an initramfs with busybox and
// kvmrun-probe (timecheck/kvmrun_probe.c), which counts RTC interrupts. kvmrun finds it, or
// builds it once per user, so an installed kvmrun needs nothing from a build tree.
//
// The builder is the make-test-guest script installed with kvmrun (next to kvmrun-probe, in
// <prefix>/libexec/kvmrun). It needs busybox-static and cpio, and downloads the kernel with
// `apt-get download` (nothing is installed): about a minute, once.
#ifndef KVMRUN_PROBE_GUEST_H_
#define KVMRUN_PROBE_GUEST_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kvmrun/process.h"
#include "kvmrun/stop_requests.h"

namespace kvmrun {

struct ProbeGuest {
  std::string kernel;
  std::string initrd;
};

struct ProbeGuestOptions {
  std::string dir;        // default: $KVMRUN_GUEST_DIR, else DefaultProbeGuestDir()
  std::string tools_dir;  // the builder and kvmrun-probe; default: kvmrun's install libexec dir
  std::shared_ptr<ProcessRunner> runner;  // default: MakeProcessRunner()
  // The builder's progress, a line at a time ("downloading the Debian kernel").
  std::function<void(std::string_view)> on_progress;
  StopRequests* stop = nullptr;
};

// <cache dir>/probe-guest: $XDG_CACHE_HOME/kvmrun/probe-guest, else ~/.cache/kvmrun/...
std::string DefaultProbeGuestDir();
// Where an installed kvmrun keeps the builder: <install prefix>/libexec/kvmrun.
std::string InstalledToolsDir();

// The probe guest in options.dir, brought up to date by the builder (a no-op when it is);
// without a builder, the guest already there. Throws Error saying what is missing and how to
// get it when there is neither, or when the build fails (with the builder's last words).
ProbeGuest FindOrBuildProbeGuest(const ProbeGuestOptions& options);

}  // namespace kvmrun

#endif  // KVMRUN_PROBE_GUEST_H_
