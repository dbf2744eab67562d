#!/usr/bin/env bash
# Runs inside the clean Debian 12 root of install_test.sh: installs the package named by $1 and
# checks that what it installed works there.
set -euo pipefail
deb=$1
step() { printf -- '--- %s\n' "$*" >&2; }
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }

step "apt-get install $deb (dependencies from the mirror)"
apt-get update -q >/dev/null
apt-get install -y -q "$deb" >/tmp/apt.log 2>&1 || { tail -n 30 /tmp/apt.log >&2; fail "apt-get install"; }
command -v kvmrun >/dev/null || fail "no kvmrun on PATH"
[ -x /usr/bin/qemu-system-x86_64 ] || fail "qemu-system-x86 was not pulled in"

step "kvmrun --version"
version=$(kvmrun --version)
echo "$version"
[[ $version =~ ^kvmrun\ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "--version printed '$version'"
expected=$(dpkg-query -W -f='${Version}' kvmrun)
[[ $version == "kvmrun $expected"* ]] || fail "--version '$version' is not the package's $expected"

step "kvmrun doctor"
doctor=$(kvmrun doctor)
echo "$doctor" | head -n 3
grep -q "^kvmrun      ${expected}" <<<"$doctor" || fail "doctor does not show kvmrun's version"
grep -q "^QEMU        /usr/bin/qemu-system-x86_64" <<<"$doctor" || fail "doctor found no QEMU"

step "kvmrun policy --os windows-11 --explain"
explain=$(kvmrun policy --os windows-11 --explain)
grep -q "hv-time" <<<"$explain" || fail "no Hyper-V clock in the Windows 11 policy"
grep -q "uefi-secure" <<<"$explain" || fail "no Secure Boot in the Windows 11 hardware"

step "man pages and bash completion"
subcommands=$(kvmrun --help | sed -n 's/^  \([a-z-]*\)\t.*/\1/p')
[ -n "$subcommands" ] || fail "kvmrun --help lists no subcommands"
[ -f /usr/share/man/man1/kvmrun.1.gz ] || fail "no kvmrun(1)"
for sub in $subcommands; do
  page=/usr/share/man/man1/kvmrun-$sub.1.gz
  [ -f "$page" ] || fail "no man page for $sub"
  # roff writes '-' as '\-'.
  zcat "$page" | sed 's/\\-/-/g' | grep -qF -- "kvmrun $sub" ||
    fail "$page does not document 'kvmrun $sub'"
done
completion=/usr/share/bash-completion/completions/kvmrun
[ -f "$completion" ] || fail "no bash completion"
words=$(bash -c 'source "$1"; COMP_WORDS=(kvmrun ru); COMP_CWORD=1; _kvmrun; echo "${COMPREPLY[*]}"' \
  sh "$completion")
[ "$words" = run ] || fail "completing 'kvmrun ru' gave '$words'"
words=$(bash -c 'source "$1"; COMP_WORDS=(kvmrun run --os windows-1); COMP_CWORD=3; _kvmrun;
                 echo "${COMPREPLY[*]}"' sh "$completion")
[[ $words == *windows-11* ]] || fail "completing --os windows-1 gave '$words'"

step "the probe guest, built by the installed builder"
# Installed, the builder keeps its guest in the user's cache, where timecheck looks for it.
guest=$(/usr/libexec/kvmrun/make-test-guest --probe /usr/libexec/kvmrun/kvmrun-probe)
[ "$guest" = /root/.cache/kvmrun/probe-guest ] || fail "the guest went to '$guest', not ~/.cache"
[ -f $guest/vmlinuz ] && [ -f $guest/initramfs.cpio ] || fail "no probe guest"

step "kvmrun run vm.toml: a boot (TCG here)"
mkdir -p /root/vms
cat >/root/vms/ci.toml <<'TOML'
os = "linux"
kernel = "../.cache/kvmrun/probe-guest/vmlinuz"
initrd = "../.cache/kvmrun/probe-guest/initramfs.cpio"
append = "console=ttyS0 quiet panic=-1"
no-reboot = true
timeout = 180
TOML
cd /
kvmrun run /root/vms/ci.toml --console-log /root/console.log >/root/run.out 2>&1 ||
  { cat /root/run.out >&2; fail "kvmrun run exited $?"; }
grep -q KVMRUN-GUEST-READY /root/console.log || { cat /root/console.log >&2; fail "the guest did not boot"; }
grep -q "clock verification: ok" /root/run.out || { cat /root/run.out >&2; fail "no clock verification"; }
echo "install_test: the package works in a clean Debian 12 root" >&2
