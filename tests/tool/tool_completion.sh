#!/usr/bin/env bash
# The bash completion of shmbus: subcommands, options, bus names from
# /dev/shm and the channels of the bus on the line.
set -euo pipefail
source "$1/tools/shmbus.bash-completion"
bus="tcomp$$"
objs=(/dev/shm/shmbus.$bus /dev/shm/shmbus.$bus:Orders /dev/shm/shmbus.$bus:Other)
dir=$(mktemp -d /tmp/shmbus-comp.XXXXXX) # a journal directory's name
trap 'rm -f "${objs[@]}"; rmdir "$dir"' EXIT
touch "${objs[@]}"

completions() { # the words of a command line; its last is completed
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMPREPLY=()
  _shmbus
  echo " ${COMPREPLY[*]:-} "
}
expect() { # a completion wanted ('' for none), then the line
  local want=$1 got
  shift
  got=$(completions "$@")
  if [[ -z $want && $got != "  " ]] || [[ -n $want && $got != *" $want "* ]]; then
    echo "completing '$*': wanted '$want', got '$got'"
    exit 1
  fi
}
expect stat shmbus st
expect top shmbus t
expect destroy shmbus de
expect unsubscribe shmbus un
expect --force shmbus unsubscribe x y z --f
expect Orders shmbus unsubscribe "$bus" Or
expect '' shmbus unsubscribe "$bus" Orders ''

expect --prometheus shmbus stat --pro
expect --watch shmbus stat x --w
expect --from-start shmbus tail x y --fr
expect "$bus" shmbus stat tcomp$$
expect "$bus" shmbus ls tcomp$$
expect "$bus" shmbus stat --watch 2 tcomp$$
expect Orders shmbus pub "$bus" O
expect Other shmbus tail "$bus" --count 5 Ot
expect Orders shmbus dlq "$bus" --from 3 Or
expect list shmbus dlq "$bus" Orders l
expect purge shmbus dlq "$bus" Orders p
expect journal shmbus jo
expect verify shmbus journal v
expect replay shmbus journal r
expect --skip-corrupt shmbus journal dump d --sk
expect --follow shmbus journal dump --fo
expect --json shmbus journal info d --j
expect '' shmbus journal info d --fo
expect "$dir" shmbus journal dump "$dir"
expect "$bus" shmbus journal replay "$dir" tcomp$$
expect Orders shmbus journal replay --from 3 "$dir" "$bus" Or
expect "$bus" shmbus journal dump "$dir" --bus tcomp$$
expect Other shmbus journal dump "$dir" --bus "$bus" --channel Ot
expect '' shmbus journal dump "$dir" --key ''
expect '' shmbus stat "$bus" O
expect '' shmbus tail "$bus" --count ''
expect '' shmbus top "$bus" --interval ''
# bridge: the direction first, then the bus, then its channels (any number
# of them, each CHANNEL[:TARGET]); options after the direction, --value's
# values, --config's file
expect to-redis shmbus bridge to-r
expect from-kafka shmbus bridge fr
expect '' shmbus bridge "$bus"
expect "$bus" shmbus bridge to-kafka tcomp$$
expect Orders shmbus bridge to-kafka "$bus" Or
expect Other shmbus bridge from-redis "$bus" Orders:o Ot
expect Other shmbus bridge to-redis --name b "$bus" Ot
expect --value shmbus bridge to-redis "$bus" Orders --va
expect --print-config shmbus bridge from-kafka --pr
expect json shmbus bridge to-redis "$bus" Orders --value j
expect raw shmbus bridge to-redis "$bus" Orders --value ''
expect '' shmbus bridge to-redis "$bus" --redis ''
expect "$dir" shmbus bridge --config "$dir"
echo "1 passed, 0 failed"
