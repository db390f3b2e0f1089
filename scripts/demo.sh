#!/usr/bin/env bash
# Sets up a Debian machine (scripts/setup.sh) and runs the specification's
# example mesh in the lab: two controllers and three peers as network
# namespaces with real WireGuard, a reachability matrix by host name, then
# everything torn down. Needs root (namespaces, WireGuard devices).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/clan-wireguard lab demo examples/spec.json "$@"
