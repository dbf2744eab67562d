# Shared by scripts/test and scripts/demo: install what is missing, then configure and build.
# Sourced, not run. Idempotent: a second run installs nothing and rebuilds only what changed.

KVMRUN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KVMRUN_BUILD=${KVMRUN_BUILD:-$KVMRUN_ROOT/build}
KVMRUN_JOBS=${KVMRUN_JOBS:-2}

# Debian packages the demo needs: configure the tree (its tests and benchmarks too, so that a
# later scripts/test reuses it), build the CLI, make the test guest and boot it.
KVMRUN_DEMO_PACKAGES=(
  cmake make g++
  libboost1.81-dev libboost-program-options1.81-dev nlohmann-json3-dev
  libgtest-dev libbenchmark-dev libre2-dev libpugixml-dev libtomlplusplus-dev pkg-config
  qemu-system-x86 busybox-static cpio
)
# Debian packages kvmrun needs to build, test and boot its test guests: the demo's, and what
# the man pages, disk images, the Debian guest, UEFI/TPM, Slurm and the recipes' tests use.
KVMRUN_PACKAGES=(
  "${KVMRUN_DEMO_PACKAGES[@]}" help2man
  qemu-utils libxml2-utils debootstrap e2fsprogs
  ovmf swtpm slurmctld slurmd slurm-client munge python3 python3-yaml
)

# Progress lines carry the seconds since the script started, so a CI log shows where time goes.
log() { printf '==> [%4ds] %s\n' "$SECONDS" "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the packages in "$@" that are not installed yet; no apt at all when none is missing.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]; then
      missing+=("$pkg")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
}

# Configures (once) and builds the tree in $1 (default: $KVMRUN_BUILD) with extra cmake args;
# only the target $KVMRUN_BUILD_TARGET when set (e.g. unit_tests).
# Warnings are errors here (KVMRUN_WERROR): these scripts are for developers and CI.
build_tree() {
  local dir=${1:-$KVMRUN_BUILD}
  shift || true
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    log "configuring $dir"
    # Line tables only (-g1): backtraces and sanitizer reports keep their file:line, and GCC
    # compiles a heavy file 25-35% faster than with full -g (a debugger wants its own build).
    cmake -S "$KVMRUN_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVMRUN_WERROR=ON \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
      -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" "$@" >/dev/null
  fi
  log "building $dir"
  # KVMRUN_BUILD_TARGET: one target or several, separated by spaces.
  # shellcheck disable=SC2086
  cmake --build "$dir" -j "$KVMRUN_JOBS" ${KVMRUN_BUILD_TARGET:+--target $KVMRUN_BUILD_TARGET}
}

# The clang tree instrumented with ASan + UBSan (no recovery) and libFuzzer's coverage: the unit
# tests run in it (scripts/test) and the fuzz targets are built in it (scripts/fuzz), so the
# library is compiled once for both. Builds the targets in "$@".
build_asan_tree() {
  local dir=$KVMRUN_ROOT/build-asan
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -q '^KVMRUN_FUZZ:BOOL=ON' "$dir/CMakeCache.txt"; then
    log "$dir is an older GCC configuration: removing it to configure it with clang"
    rm -rf "$dir"
  fi
  CC=clang CXX=clang++ KVMRUN_BUILD_TARGET="$*" build_tree "$dir" -DKVMRUN_SANITIZE=ON \
    -DKVMRUN_FUZZ=ON -DKVMRUN_BUILD_BENCH=OFF
}

# libvirt 9 without systemd, as Debian 12 ships it: packages, the qemu user and groups, QEMU
# run as root without a security driver (so it reads the guest files in this tree), and the
# daemons started by hand. Prints why not, and fails, when it cannot.
setup_libvirt() {
  if virsh -c qemu:///system version >/dev/null 2>&1; then return 0; fi
  if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
    echo "not root, and no passwordless sudo to install and start libvirtd"
    return 1
  fi
  ensure_packages libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients >&2 ||
    { echo "cannot install libvirt"; return 1; }
  as_root groupadd -f kvm
  as_root groupadd -f libvirt-qemu
  id libvirt-qemu >/dev/null 2>&1 ||
    as_root useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
  local conf=/etc/libvirt/qemu.conf
  if ! grep -q '^security_driver' "$conf" 2>/dev/null; then
    printf 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\n' | as_root tee -a "$conf" >/dev/null
  fi
  as_root mkdir -p /var/log/libvirt /var/run/libvirt /var/lib/libvirt/qemu
  # -r: a zombie left by an earlier daemon is not a running one.
  pgrep -x -r R,S,D,I virtlogd >/dev/null || as_root virtlogd -d
  pgrep -x -r R,S,D,I libvirtd >/dev/null || as_root libvirtd -d
  for _ in $(seq 50); do
    virsh -c qemu:///system version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "libvirtd did not come up (see /var/log/libvirt/libvirtd.log)"
  return 1
}
