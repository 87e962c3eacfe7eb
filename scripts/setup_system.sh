#!/usr/bin/env bash
# System packages the project needs beyond pip: Debian's `fortunes` (the builtin offline dataset).
# Installs them when missing and running as root; otherwise says how, and fails.
set -euo pipefail
missing=()
for pkg in fortunes fortunes-min; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "error: the builtin fortunes dataset needs the Debian packages ${missing[*]}: run \`sudo apt-get install -y ${missing[*]}\`" >&2
  exit 1
fi
