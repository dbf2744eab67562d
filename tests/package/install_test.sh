#!/usr/bin/env bash
# The Debian package on a clean Debian 12: debootstrap a minbase root (no build tree, nothing of
# kvmrun's), `apt-get install ./kvmrun_*.deb` in it (apt resolves QEMU and the rest from the
# mirror), then, inside it: kvmrun --version, doctor, policy --os windows-11 --explain, the man
# pages and the bash completion, the probe guest built by the installed builder, and a boot of
# that guest from a VM file. Needs root (debootstrap, chroot, mounts in a private namespace).
#   tests/package/install_test.sh DIR [ROOT]
#                 DIR holds kvmrun_*.deb (scripts/package: build-deb/); ROOT, when given, is a
#                 root made earlier by --bootstrap, used up (and removed) by this run
#   tests/package/install_test.sh --bootstrap ROOT
#                 only the debootstrap, into ROOT, so that a caller can overlap it with other
#                 work (scripts/test does, while it compiles)
# Exit 0 passed, 1 failed, 77 skipped (not root, or no debootstrap), with the reason.
set -euo pipefail
log() { printf '==> [%4ds] install_test: %s\n' "$SECONDS" "$*" >&2; }
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: install_test needs root (debootstrap, chroot)"; exit 77; fi
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap is not installed"; exit 77; }

# A clean bookworm minbase root in $1, from the mirror the machine already uses (else Debian's
# own); the stamp says it is complete.
bootstrap() {
  local mirror
  mirror=$("$(dirname "$0")/../../scripts/debian-mirror" || echo http://deb.debian.org/debian)
  log "debootstrap bookworm minbase from $mirror"
  mkdir -p "$1"
  debootstrap --variant=minbase bookworm "$1" "$mirror" >"$1.debootstrap.log" 2>&1 ||
    { tail -n 20 "$1.debootstrap.log" >&2; exit 1; }
  rm -f "$1.debootstrap.log"
  touch "$1/.kvmrun-bootstrapped"
}

if [ "${1:-}" = --bootstrap ]; then
  [ -n "${2:-}" ] || { echo "install_test: --bootstrap needs a directory" >&2; exit 2; }
  bootstrap "$2"
  exit 0
fi

deb_dir=$(realpath "$1")
deb=$(ls "$deb_dir"/kvmrun_*_amd64.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { echo "install_test: no kvmrun_*_amd64.deb in $deb_dir (scripts/package)" >&2; exit 1; }

if [ -n "${2:-}" ]; then
  root=$2
  # Checked before the trap that removes it: never remove a directory this script did not make.
  [ -f "$root/.kvmrun-bootstrapped" ] ||
    { echo "install_test: $root is not a root made by --bootstrap" >&2; exit 1; }
  trap 'rm -rf --one-file-system "$root"' EXIT
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/kvmrun-install-test-XXXXXX")
  trap 'rm -rf --one-file-system "$work"' EXIT
  root=$work/root
  bootstrap "$root"
fi
cp "$deb" "$root/tmp/"
cp "$(dirname "$0")/in_root.sh" "$root/tmp/"

# Everything else runs in the root, in a private mount namespace: /proc, /sys and /dev are
# mounted for it and vanish with it, whatever happens.
log "installing $(basename "$deb") with apt-get, and checking it in the clean root"
unshare --mount --fork sh -c '
  set -e
  mount -t proc proc "$1/proc"
  mount --rbind /sys "$1/sys"
  mount --rbind /dev "$1/dev"
  exec chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 bash /tmp/in_root.sh "/tmp/$2"
' sh "$root" "$(basename "$deb")"
log "passed"
