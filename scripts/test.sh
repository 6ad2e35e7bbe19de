#!/usr/bin/env bash
# Set up, then run every check: lint, format, types, and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh

echo "== ruff check" && .venv/bin/ruff check src tests bench
echo "== ruff format --check" && .venv/bin/ruff format --check src tests bench
echo "== mypy (strict, src/charstudio)" && .venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$code"
