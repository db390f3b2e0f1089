#!/usr/bin/env bash
# Sets up a Debian machine (scripts/setup.sh) and runs every check of the
# project: lint, types, every .nix file parsed, and the whole pytest suite
# (Python, Nix evaluation, and lab tests on real WireGuard, which need root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check generators tests bench
echo "== mypy --strict"
mypy --strict generators/clan_wireguard tests bench
echo "== nix-instantiate --parse (every .nix file)"
git ls-files -z --cached --others --exclude-standard -- '*.nix' | while IFS= read -r -d '' file; do
  nix-instantiate --parse "$file" >/dev/null || { echo "parse error: $file" >&2; exit 1; }
done
echo "== pytest"
status=0
python -m pytest "$@" || status=$?
# Exit status 5 means no test was collected: that is a failure here too.
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$status"
