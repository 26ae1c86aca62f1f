#!/usr/bin/env bash
# The man page: valid roff without warnings, a section per subcommand, and
# every option that a subcommand's --help names.
set -euo pipefail
src=$1 tool=$2
page="$src/tools/shmbus.1"
warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
if [[ -n $warnings ]]; then
  echo "groff: $warnings"
  exit 1
fi
# mandoc's linter (what man pages are checked with on the BSDs and by
# distributions' lintian): no warning at all
if command -v mandoc >/dev/null; then
  lint=$(mandoc -T lint -W warning "$page" 2>&1) || { echo "mandoc: $lint"; exit 1; }
  [[ -z $lint ]] || { echo "mandoc: $lint"; exit 1; }
else
  echo "mandoc not found (apt-get install mandoc): mandoc -T lint skipped"
fi
# as man shows it in an 80-column terminal: no line past 80 columns
# (examples in .nf blocks are not filled, so a long one runs over)
wide=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -rLL=78n -P -cbou "$page" 2>/dev/null |
  awk 'length($0) > 80 { print NR ": " $0 }')
[[ -z $wide ]] || { echo "past 80 columns: $wide"; exit 1; }
text=$(LC_ALL=C.UTF-8 MANWIDTH=80 groff -man -Tascii -P -cbou "$page" 2>/dev/null)
cmds="ls stat top tail pub dlq watchdog unsubscribe destroy journal"
"$tool" bridge --help >/dev/null 2>&1 && cmds+=" bridge" # when built
for cmd in $cmds; do
  grep -q "^\.SS $cmd\b" "$page" || { echo "no section for $cmd"; exit 1; }
  for opt in $("$tool" "$cmd" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -qF -- "$opt" <<<"$text" || { echo "$cmd $opt is not in the man page"; exit 1; }
  done
done
# the journal's verbs: named in its section, every option of each
for verb in info dump verify replay accept-loss; do
  grep -q "^\.SS journal .*\b$verb\b" "$page" || { echo "no journal $verb"; exit 1; }
  for opt in $("$tool" journal "$verb" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -qF -- "$opt" <<<"$text" || { echo "journal $verb $opt is not in the man page"; exit 1; }
  done
done
echo "1 passed, 0 failed"
