#!/usr/bin/env bash
# A matrix of kvmrun's test guest run as a real Slurm job array, and as one boot-test: a one-node Slurm started here
# (tests/support/one-node-slurm), deploy/slurm/submit splits the suite into 2 array tasks and a
# dependent merge job, and the merged report must hold every case of the matrix exactly once,
# passed, each run by the shard its name hashes to. Every daemon started here is stopped.
#   tests/deploy/slurm_test.sh KVMRUN TEST_GUEST_DIR
set -euo pipefail
kvmrun=$1 guest=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: starting Slurm's daemons needs root"; exit 77; fi
for tool in slurmctld slurmd sbatch munged; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kvmrun-slurm-XXXXXX")
cleanup() {
  "$root/tests/support/one-node-slurm" stop "$work/slurm" || true
  rm -rf "$work"
}
trap cleanup EXIT
eval "$("$root/tests/support/one-node-slurm" start "$work/slurm")"

# Four cases: one case over two OS policies and two memory sizes.
cat > "$work/suite.json" <<JSON
{"matrix": {"os": ["linux", "windows-10"], "memory": ["256M", "320M"]},
 "cases": [{"name": "guest", "kernel": "$guest/vmlinuz", "initrd": "$guest/initramfs.cpio",
            "append": "console=ttyS0 quiet panic=-1", "expect": "KVMRUN-GUEST-READY",
            "timeout": 60}]}
JSON
export KVMRUN=$kvmrun
export XDG_RUNTIME_DIR=$work/run XDG_CACHE_HOME=$work/cache
mkdir -p "$XDG_RUNTIME_DIR"
status=0
"$root/deploy/slurm/submit" --wait "$work/suite.json" "$work/results" 2 --accel tcg || status=$?
echo "merge exit status: $status"
[ "$status" -eq 0 ] || { cat "$work"/results/slurm-*.out; exit 1; }

# Every case of the expanded matrix, once, passed, from the shard its name hashes to, and
# both array tasks ran (each wrote its shard directory).
"$kvmrun" boot-test --cases "$work/suite.json" --list > "$work/expected.txt"
[ "$(wc -l < "$work/expected.txt")" -eq 4 ] || { echo "FAIL: expected 4 cases"; exit 1; }
names() { grep -o '"name": "[^"]*"' "$1" | cut -d'"' -f4 | sort; }
names "$work/results/all.json" > "$work/merged.txt"
sort "$work/expected.txt" | diff - "$work/merged.txt"   # every case, and only once
grep -q '"ok": true' "$work/results/all.json"
grep -q '"problems": \[\]' "$work/results/all.json"
[ "$(grep -c '"passed": true' "$work/results/all.json")" -eq 4 ]
for i in 1 2; do  # each shard ran the cases its names hash to, and wrote them
  "$kvmrun" boot-test --cases "$work/suite.json" --list --shard "$i/2" | sort > "$work/want-$i.txt"
  names "$work/results/shard-$i-of-2/results.json" | diff "$work/want-$i.txt" -
done
echo "ok: 4 cases, each once and passed, each in its shard"

# The same file, unchanged, as one boot-test on this host.
"$kvmrun" boot-test --cases "$work/suite.json" --accel tcg --jobs 2 | tee "$work/single.out"
grep -qx '4 passed, 0 failed' "$work/single.out"
grep -q '<testsuites' "$work/results/all.xml"
