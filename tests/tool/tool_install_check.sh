#!/usr/bin/env bash
# cmake --install puts the tool, its man page and its bash completion where
# man, bash-completion and systemd look for them.
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
# The watchdog's unit: in systemd's unit directory under the prefix, its
# ExecStart the installed tool, and systemd's own checker accepts it
# (offline: verify loads the file, --man=no skips the Documentation= lookup).
unit=$work/lib/systemd/system/shmbus-watchdog@.service
[[ -s $unit ]] || { echo "not installed: $unit"; find "$work" -name '*.service'; exit 1; }
grep -qx "ExecStart=$work/bin/shmbus watchdog %i" "$unit" ||
  { echo "ExecStart is not the installed tool:"; grep ExecStart "$unit"; exit 1; }
if command -v systemd-analyze >/dev/null; then
  cp "$unit" "$work/shmbus-watchdog@bus1.service"
  out=$(systemd-analyze verify --man=no "$work/shmbus-watchdog@bus1.service" 2>&1) ||
    { echo "systemd-analyze verify: $out"; exit 1; }
  [[ -z $out ]] || { echo "systemd-analyze verify: $out"; exit 1; }
else
  echo "systemd-analyze not found (apt-get install systemd): unit not verified"
fi
echo "1 passed, 0 failed"
