# bash completion for kvmrun. Everything is read from kvmrun itself, so it cannot drift from
# the binary: subcommands from `kvmrun --help`, options and their value lists from
# `kvmrun SUBCOMMAND --help`, guest OSes from `kvmrun policy --list`, VM names from `kvmrun ps`.
# Installed as /usr/share/bash-completion/completions/kvmrun (loaded on first use).

# The options of a subcommand, one "--name PLACEHOLDER" (or "--name") per line.
_kvmrun_options() {
  "$1" "$2" --help 2>/dev/null |
    sed -n 's/^  \(-[[:alnum:]], \)\{0,1\}\(--[[:alnum:]-]*\)\( [^ ]*\)\{0,1\}.*/\2\3/p'
}

_kvmrun_vm_names() {
  "$1" ps 2>/dev/null | awk 'NR > 1 && $1 != "" {print $1}'
}

_kvmrun_guest_oses() {
  "$1" policy --list 2>/dev/null | awk 'NR > 1 && $1 ~ /^[a-z][a-z0-9.-]*$/ {print $1}'
}

_kvmrun() {
  local kvmrun=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  if ((COMP_CWORD == 1)); then
    local subcommands
    subcommands=$("$kvmrun" --help 2>/dev/null | sed -n 's/^  \([a-z-]*\)\t.*/\1/p')
    mapfile -t COMPREPLY < <(compgen -W "$subcommands --help --version" -- "$cur")
    return
  fi
  local sub=${COMP_WORDS[1]} options placeholder=""
  options=$(_kvmrun_options "$kvmrun" "$sub")

  # --option=value is split by bash at '=' (COMP_WORDBREAKS): prev is then '='.
  if [[ $prev == "=" && COMP_CWORD -ge 3 ]]; then prev=${COMP_WORDS[COMP_CWORD - 2]}; fi
  if [[ $prev == --* ]]; then
    placeholder=$(awk -v o="$prev" '$1 == o {print $2}' <<<"$options")
    # An optional value shows as [=a|b(=a)]: the choices are a|b.
    placeholder=${placeholder#[=}
    placeholder=${placeholder%%(*}
    placeholder=${placeholder%]}
  fi
  if [[ -n $placeholder ]]; then
    case $prev in
      --os | --compare)
        mapfile -t COMPREPLY < <(compgen -W "$(_kvmrun_guest_oses "$kvmrun") default" -- "$cur") ;;
      --name | --qmp-socket)
        mapfile -t COMPREPLY < <(compgen -W "$(_kvmrun_vm_names "$kvmrun")" -- "$cur")
        [[ $prev == --qmp-socket ]] && mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur") ;;
      *)
        if [[ $placeholder == *"|"* ]]; then
          mapfile -t COMPREPLY < <(compgen -W "${placeholder//|/ }" -- "$cur")
        elif [[ $placeholder == DIR* ]]; then
          mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        elif [[ $placeholder == FILE* || $placeholder == PATH* ]]; then
          mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi ;;
    esac
    return
  fi
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(awk '{print $1}' <<<"$options")" -- "$cur")
    return
  fi
  # A word that is no option's value: the subcommand's operand.
  case $sub in
    run | boot-test | timecheck)  # a VM file
      mapfile -t COMPREPLY < <(compgen -f -X '!*.toml' -- "$cur")
      mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -X '!*.json' -- "$cur")
      mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur") ;;
    console | exec | stop | sync | snapshot | verify)
      mapfile -t COMPREPLY < <(compgen -W "$(_kvmrun_vm_names "$kvmrun")" -- "$cur") ;;
    report)
      mapfile -t COMPREPLY < <(compgen -W "merge" -- "$cur")
      mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur") ;;
  esac
}
complete -o filenames -F _kvmrun kvmrun
