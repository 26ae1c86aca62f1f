#!/usr/bin/env bash
# cmake --install puts the tool, its man page and its bash completion where
# man and bash-completion look for them.
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work" >/dev/null
for f in bin/shmbus share/man/man1/shmbus.1 share/bash-completion/completions/shmbus; do
  [[ -s $work/$f ]] || { echo "not installed: $f"; exit 1; }
done
if command -v man >/dev/null; then
  MANPATH="$work/share/man" man -w shmbus | grep -q "$work" || { echo "man does not find it"; exit 1; }
fi
echo "1 passed, 0 failed"
