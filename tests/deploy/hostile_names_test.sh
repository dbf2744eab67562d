#!/usr/bin/env bash
# deploy/slurm/submit with hostile names, against a fake Slurm (tests/deploy/fake-slurm) that
# reads values where Slurm does: --wrap through sh, --export split at commas, %-patterns in
# --output. A suite and a results directory whose names hold quotes, $(...), spaces, commas
# and semicolons must reach kvmrun byte for byte, run nothing, and add no variable; a name
# Slurm would mangle is refused before anything is queued.
#   tests/deploy/hostile_names_test.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kvmrun-hostile-XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A fake kvmrun: records each call's argv (NUL-separated) and the variables the scripts pass.
mkdir -p "$work/bin" "$work/calls" "$work/cwd" "$work/state"
cat > "$work/bin/kvmrun" <<'FAKE'
#!/usr/bin/env bash
n=$(find "$FAKE_KVMRUN_CALLS" -name "*.argv" | wc -l)
printf '%s\0' "$@" > "$FAKE_KVMRUN_CALLS/$n.argv"
printf '%s\0' "${KVMRUN_SUITE-unset}" "${KVMRUN_RESULTS-unset}" "${KVMRUN-unset}" \
  > "$FAKE_KVMRUN_CALLS/$n.env"
if [ "$1" = boot-test ] && [[ " $* " == *" --list "* ]]; then echo case-a; echo case-b; fi
if [ "$1" = report ]; then
  while [ $# -gt 0 ]; do [ "$1" = --json ] && printf '{"ok": true}\n' > "$2"; shift; done
fi
exit 0
FAKE
chmod +x "$work/bin/kvmrun"
export PATH="$root/tests/deploy/fake-slurm:$PATH" FAKE_SLURM_STATE=$work/state
export FAKE_KVMRUN_CALLS=$work/calls KVMRUN=$work/bin/kvmrun

suite_dir="$work/suite \$(touch PWNED) 'q' \"d\""
mkdir -p "$suite_dir"
suite="$suite_dir/m;x.json"
echo '{}' > "$suite"
results="$work/R'\$(touch PWNED)' \"q\" a,KVMRUN=/bin/false b;c \`touch PWNED\`"
extra="--name=\$(touch PWNED)'x"

cd "$work/cwd"
"$root/deploy/slurm/submit" --wait "$suite" "$results" 2 --accel tcg "$extra" > "$work/out" 2>&1 ||
  { cat "$work/out"; fail "submit failed"; }
[ -z "$(find "$work" / -maxdepth 1 -name PWNED 2>/dev/null; find "$work" -name PWNED)" ] ||
  fail "a name ran a command"

argv_of() { local -a a; mapfile -d '' a < "$1"; printf '%s\n' "${a[@]@Q}"; }
expect_call() {  # expect_call N ARGS...: call N had exactly ARGS
  local file=$work/calls/$1.argv
  shift
  [ -f "$file" ] || fail "no call $(basename "$file")"
  diff <(argv_of "$file") <(printf '%s\n' "${@@Q}") || fail "call $(basename "$file") got other arguments"
}
expect_call 0 boot-test --cases "$suite" --list --accel tcg "$extra"
expect_call 1 boot-test --cases "$suite" --shard auto --results "$results" --accel tcg "$extra"
expect_call 2 boot-test --cases "$suite" --shard auto --results "$results" --accel tcg "$extra"
expect_call 3 report merge "$results" --junit "$results/all.xml" --json "$results/all.json"
for n in 1 2 3; do  # the variables arrived whole: no comma made a new one
  mapfile -d '' env < "$work/calls/$n.env"
  [ "${env[0]}" = "$suite" ] || fail "KVMRUN_SUITE arrived as '${env[0]}'"
  [ "${env[1]}" = "$results" ] || fail "KVMRUN_RESULTS arrived as '${env[1]}'"
  [ "${env[2]}" = "$KVMRUN" ] || fail "KVMRUN arrived as '${env[2]}'"
done
[ -f "$results/all.json" ] || fail "the merge wrote no all.json"

# Names Slurm would read as patterns in --output: refused, nothing queued.
for bad in "$work/R%j" "$work/R\\n" $'\n'; do
  rm -f "$work/state/next-id"
  status=0
  "$root/deploy/slurm/submit" "$suite" "$work/x$bad" 1 > "$work/out" 2>&1 || status=$?
  [ "$status" -eq 2 ] || { cat "$work/out"; fail "'$bad' in RESULTS_DIR: exit $status, not 2"; }
  grep -q "choose another directory" "$work/out" || fail "no reason given for '$bad'"
  [ ! -e "$work/state/next-id" ] || fail "a job was queued for '$bad'"
done
echo "ok: hostile names reach kvmrun whole through the fake Slurm; mangled ones are refused"
