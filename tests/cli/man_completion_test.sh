#!/usr/bin/env bash
# Every subcommand the binary lists has a man page that documents each of its options, and the
# bash completion completes it: its name, its options (exactly those of its --help), the values
# of an option with a list (--accel), guest OSes from the catalog, and VM names from kvmrun ps
# (a named VM faked by holding its registry lock, as a running supervisor does).
#   tests/cli/man_completion_test.sh KVMRUN MAN_DIR COMPLETION
set -euo pipefail
kvmrun=$1 man_dir=$2 completion=$3
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# The completion as bash runs it on Tab: COMP_WORDS, COMP_CWORD, then _kvmrun; prints COMPREPLY.
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kvmrun
           printf "%s\n" "${COMPREPLY[@]}" | sort' sh "$completion" "$kvmrun" "$@"
}

subcommands=$("$kvmrun" --help | sed -n 's/^  \([a-z-]*\)\t.*/\1/p')
[ "$(wc -w <<<"$subcommands")" -ge 14 ] || fail "kvmrun --help lists only: $subcommands"
[ -s "$man_dir/kvmrun.1" ] || fail "no kvmrun.1 in $man_dir"
for sub in $subcommands; do
  grep -q "kvmrun-$sub (1)" "$man_dir/kvmrun.1" || fail "kvmrun(1) does not refer to kvmrun-$sub(1)"
done

top=$(complete_words "")
for sub in $subcommands --help --version; do
  grep -qx -- "$sub" <<<"$top" || fail "'kvmrun <Tab>' does not offer $sub"
done

for sub in $subcommands; do
  page=$man_dir/kvmrun-$sub.1
  if [ ! -s "$page" ]; then fail "no man page for $sub ($page)"; continue; fi
  options=$("$kvmrun" "$sub" --help | sed -n 's/^  \(-[[:alnum:]], \)\{0,1\}\(--[[:alnum:]-]*\).*/\2/p' | sort)
  [ -n "$options" ] || fail "$sub --help lists no options"
  for option in $options; do
    # help2man writes each '-' of an option as '\-'.
    grep -qF -- "${option//-/\\-}" "$page" || fail "$page does not document $option"
  done
  grep -q '^\.SH "\?SEE ALSO' "$page" || fail "$page has no SEE ALSO"
  offered=$(complete_words "$sub" "--")
  [ "$offered" = "$options" ] || fail "'kvmrun $sub --<Tab>' offers [$(echo $offered)], --help has [$(echo $options)]"
done

[ "$(complete_words run --accel "" | xargs)" = "auto kvm tcg" ] || fail "--accel values: $(complete_words run --accel "" | xargs)"
[ "$(complete_words run --dump-config "" | xargs)" = "json toml" ] || fail "--dump-config values"
oses=$(complete_words run --os windows-1)
grep -qx windows-10 <<<"$oses" && grep -qx windows-11 <<<"$oses" || fail "--os windows-1 gave [$oses]"
grep -qx linux <<<"$(complete_words policy --os lin)" || fail "--os lin gave no linux"

# A named VM, as kvmrun ps sees one: its directory, and its lock held.
# This shell holds the lock until it exits.
runtime=$(mktemp -d "${TMPDIR:-/tmp}/kvmrun-completion-XXXXXX")
files=$(mktemp -d "${TMPDIR:-/tmp}/kvmrun-completion-files-XXXXXX")
trap 'rm -rf "$runtime" "$files"' EXIT
chmod 700 "$runtime"
mkdir -p "$runtime/kvmrun/webserver"
echo '{"os": "linux"}' > "$runtime/kvmrun/webserver/vm.json"
exec {lock_fd}>"$runtime/kvmrun/webserver/lock"
flock -n "$lock_fd"
XDG_RUNTIME_DIR=$runtime "$kvmrun" ps | grep -q '^webserver' || fail "kvmrun ps does not list the faked VM"
for words in "stop we" "console we" "exec we" "run --name we"; do
  # shellcheck disable=SC2086
  got=$(XDG_RUNTIME_DIR=$runtime complete_words $words)
  [ "$got" = webserver ] || fail "'kvmrun $words<Tab>' gave [$got], not webserver"
done

# A VM file is the operand of run: *.toml and *.json (and directories), nothing else.
touch "$files/vm.toml" "$files/vm.json" "$files/notes.txt"
got=$(cd "$files" && complete_words run "" | xargs)
[ "$got" = "vm.json vm.toml" ] || fail "'kvmrun run <Tab>' offered [$got]"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "man pages and completion: $(wc -w <<<"$subcommands") subcommands, all documented and completed"
