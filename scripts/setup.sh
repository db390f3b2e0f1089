#!/usr/bin/env bash
# Installs what clan-wireguard needs on a Debian machine: the Debian packages
# (Nix for evaluation, WireGuard in user space, iproute2, ping) and the Python
# package with its test tools in ./.venv. Safe to run again: it installs only
# what is missing. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run this as root (e.g. sudo $0): it installs Debian packages, and the lab creates network namespaces" >&2
  exit 1
fi

debian_packages=(nix-bin wireguard-go wireguard-tools iproute2 iputils-ping tcpdump iperf3 util-linux procps)
# Debian's python3 needs python3-venv for `python3 -m venv`; a python3 that
# already has ensurepip (pyenv, a Nix shell) does not.
python3 -c 'import ensurepip' 2>/dev/null || debian_packages+=(python3-venv)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
# The plain path entry of a "compat" editable install costs nothing at
# start-up; setuptools' default import hook costs about 15 ms per process,
# a quarter of a generator's budget (clan runs each generator afresh).
.venv/bin/python -m pip install -q --disable-pip-version-check \
  --config-settings editable_mode=compat -e 'generators[test]'
