// Citations for the policy decisions and rendering rules. docs/timekeeping.md expands each.
#ifndef KVMRUN_POLICY_SOURCES_H_
#define KVMRUN_POLICY_SOURCES_H_

namespace kvmrun::sources {

inline constexpr const char kNovaBug1011848[] =
    "OpenStack Nova bug 1011848 (2012): pit no-reinjection, rtc base=utc,driftfix=slew";
inline constexpr const char kKvmApiReinject[] =
    "Linux Documentation/virt/kvm/api.rst, KVM_REINJECT_CONTROL";
inline constexpr const char kNovaWindows[] =
    "OpenStack Nova libvirt driver, Windows guests: offset localtime, pit delay, rtc catchup, "
    "hpet off, hypervclock";
inline constexpr const char kVirtInstall[] =
    "virt-install/virt-manager clock defaults: rtc catchup, pit delay, hpet off";
inline constexpr const char kQuickemu544[] =
    "quickemu issue 544: Windows 11 slow shutdown with PIT discard, fixed by delay";
inline constexpr const char kWindowsLocaltime[] =
    "Windows keeps the RTC in local time unless RealTimeIsUniversal is set";
inline constexpr const char kQemuRtc[] = "QEMU manual, -rtc driftfix=slew (mc146818rtc)";
inline constexpr const char kQemuDefaults[] =
    "QEMU defaults: rtc base=utc driftfix=none, kvm-pit delay, hpet on, kvmclock on";
inline constexpr const char kQemuHyperv[] =
    "QEMU docs/system/i386/hyperv.rst: hv-time needs hv-relaxed, hv-vapic, hv-spinlocks";
inline constexpr const char kRedHatTiming[] =
    "Red Hat Virtualization Deployment Guide, KVM guest timing management";
inline constexpr const char kProxmoxOldWindows[] =
    "Proxmox VE qemu-server: driftfix=slew for Windows XP/2003";
inline constexpr const char kFreeBsdKvmclock[] =
    "FreeBSD kvmclock(4): preferred over the TSC as timecounter when present";
inline constexpr const char kFreeBsdHpet[] =
    "FreeBSD hpet(4) and eventtimers(4): HPET as event timer and timecounter";
inline constexpr const char kFreeBsdUtc[] =
    "FreeBSD adjkerntz(8): the CMOS clock is UTC unless /etc/wall_cmos_clock exists";
inline constexpr const char kKvmclockLinux[] =
    "Linux arch/x86/kernel/kvmclock.c: kvm-clock clocksource since 2.6.27";
inline constexpr const char kQemuHpetOption[] =
    "QEMU: -machine hpet= since 5.2; -no-hpet deprecated in 8.0, removed in 9.0";
inline constexpr const char kQemuPitOption[] =
    "QEMU: -no-kvm-pit-reinjection removed in 3.0; -global kvm-pit.lost_tick_policy";

}  // namespace kvmrun::sources

#endif  // KVMRUN_POLICY_SOURCES_H_
