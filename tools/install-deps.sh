#!/usr/bin/env bash
# Installs what building, testing and the demo need on Debian 12 (as root).
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang
      liburcu-dev libck-dev libcriterion-dev spin
      librdkafka-dev libhiredis-dev redis-server redis-tools libisal-dev
      libjansson-dev jq tmux groff-base
      systemd mandoc prometheus curl kcat python3-jsonschema gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
