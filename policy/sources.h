// Citations for the policy decisions and rendering rules: each is a URL or a file and the place
// in it, so that a reader can open it and find what the reason says. docs/timekeeping.md
// expands each; a unit test holds every one non-empty and distinct.
#ifndef KVMRUN_POLICY_SOURCES_H_
#define KVMRUN_POLICY_SOURCES_H_

namespace kvmrun::sources {

inline constexpr const char kNovaBug1011848[] =
    "https://bugs.launchpad.net/nova/+bug/1011848 (rtc catchup for every guest: Windows 7 "
    "BSODs and old-Linux drift with QEMU's defaults)";
inline constexpr const char kKvmApiReinject[] =
    "https://docs.kernel.org/virt/kvm/api.html#kvm-reinject-control (re-injection only for "
    "guests that count PIT ticks)";
inline constexpr const char kNovaWindowsClock[] =
    "openstack/nova nova/virt/libvirt/driver.py, _set_clock and _set_kvm_timers (Windows: "
    "offset localtime, hpet off, hypervclock)";
inline constexpr const char kNovaHyperv[] =
    "openstack/nova nova/virt/libvirt/driver.py, _set_features (Windows: relaxed, vapic, "
    "spinlocks 8191, vpindex, runtime, synic, reset, frequencies, tlbflush, ipi)";
inline constexpr const char kVirtInstallClock[] =
    "virt-manager virtinst/domain/clock.py, set_defaults (rtc catchup, hpet off; pit 'delay' "
    "written for -no-kvm-pit-reinjection)";
inline constexpr const char kVirtInstallHyperv[] =
    "virt-manager virtinst/domain/features.py, _set_hyperv_defaults (the enlightenments the "
    "QEMU supports, each only with what it requires)";
inline constexpr const char kProxmoxTimer[] =
    "proxmox/qemu-server src/PVE/QemuServer/Cfg2Cmd/Timer.pm (every Windows: localtime, "
    "driftfix=slew; Vista and later: kvm-pit discard, hpet off)";
inline constexpr const char kProxmoxHyperv[] =
    "proxmox/qemu-server src/PVE/QemuServer/CPUConfig.pm, get_hyperv_enlightenments (none "
    "before Vista; synic, stimer, ipi, relaxed from Windows 7)";
inline constexpr const char kWindowsLocaltime[] =
    "Microsoft KB 2687252 as cited in openstack/nova nova/virt/libvirt/driver.py, _set_clock "
    "(Windows expects the RTC in local time; RealTimeIsUniversal is buggy)";
inline constexpr const char kQemuRtc[] =
    "https://www.qemu.org/docs/master/system/invocation.html, -rtc (clock=host, the default, "
    "follows the host's wall clock; rt and vm do not)";
inline constexpr const char kQemuDefaults[] =
    "QEMU hw/rtc/mc146818rtc.c, hw/i386/kvm/i8254.c, hw/i386/pc.c, target/i386/cpu.c (rtc "
    "base=utc driftfix=none clock=host, kvm-pit delay, hpet on where built, kvmclock on)";
inline constexpr const char kQemuHypervTime[] =
    "https://www.qemu.org/docs/master/system/i386/hyperv.html, hv-time (the reference counter "
    "and TSC page; it requires no other enlightenment)";
inline constexpr const char kQemuHypervStimer[] =
    "https://www.qemu.org/docs/master/system/i386/hyperv.html, hv-stimer (without it some "
    "Windows fall back to the HPET, or the RTC when there is none)";
inline constexpr const char kRedHatBootIni[] =
    "https://docs.redhat.com/en/documentation/red_hat_enterprise_linux/5/html/virtualization/"
    "chap-virtualization-kvm_guest_timing_management (Windows XP/2003: /usepmtimer in boot.ini)";
inline constexpr const char kRedHatKvmclockDefault[] =
    "https://access.redhat.com/documentation/en-US/Red_Hat_Enterprise_Virtualization/3.0/html/"
    "Administration_Guide/KVM_Clock_Appendix.html (RHEL >= 5.5 uses kvm-clock by default; "
    "running without it is not recommended)";
inline constexpr const char kRedHatGuestParameters[] =
    "https://docs.redhat.com/en/documentation/red_hat_enterprise_linux/6/html/"
    "virtualization_host_configuration_and_guest_installation_guide/"
    "form-virtualization_host_configuration_and_guest_installation_guide-kvm_guest_timing_"
    "management-required_parameters_for_rhel_guests (RHEL guests without kvm-clock)";
inline constexpr const char kFreeBsdKvmclock[] =
    "https://man.freebsd.org/cgi/man.cgi?query=kvmclock&sektion=4 (the kvm-clock timecounter "
    "and its use)";
inline constexpr const char kFreeBsdEventtimers[] =
    "https://man.freebsd.org/cgi/man.cgi?query=eventtimers&sektion=4 (the LAPIC timer is "
    "preferred; the HPET is one fallback of several)";
inline constexpr const char kFreeBsdUtc[] =
    "https://man.freebsd.org/cgi/man.cgi?query=adjkerntz&sektion=8 (the CMOS clock is UTC "
    "unless /etc/wall_cmos_clock exists)";
inline constexpr const char kKvmclockLinux[] =
    "https://kernelnewbies.org/Linux_2_6_26 (KVM paravirtual clock for guests, "
    "arch/x86/kernel/kvmclock.c, first released in 2.6.26)";
inline constexpr const char kQemuHpetOption[] =
    "QEMU docs/about/removed-features.rst: -no-hpet (removed in 9.0; -machine hpet=off since "
    "5.2)";
inline constexpr const char kQemuPitOption[] =
    "QEMU docs/about/removed-features.rst: -no-kvm-pit-reinjection (1.3 to 2.12; "
    "-global kvm-pit.lost_tick_policy=discard since 1.3)";

}  // namespace kvmrun::sources

#endif  // KVMRUN_POLICY_SOURCES_H_
