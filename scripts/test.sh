#!/usr/bin/env bash
# Set up, then run every check: lint, format, types, and the whole test suite on SQLite;
# then the library, jobs and API tests a second time on PostgreSQL + Redis, which
# scripts/services.sh installs and starts (and this script stops at exit).
#
#   scripts/test.sh                  everything (what CI runs)
#   scripts/test.sh ARGS...          pytest ARGS on SQLite only (a file, -k, ...)
#   CHARSTUDIO_SKIP_SERVERS=1 scripts/test.sh   no PostgreSQL + Redis run (said loudly)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh

echo "== ruff check" && .venv/bin/ruff check src tests bench
echo "== ruff format --check" && .venv/bin/ruff format --check src tests bench
echo "== mypy (strict, src/charstudio)" && .venv/bin/mypy

# pytest's exit 5 (no tests collected) is a failure here, never a pass.
run_pytest() {
  local code=0
  .venv/bin/python -m pytest "$@" || code=$?
  if [ "$code" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    return 1
  fi
  return "$code"
}

echo "== pytest (SQLite)"
first=0
run_pytest "$@" || first=$?
if [ $# -gt 0 ]; then
  exit "$first"
fi
if [ "${CHARSTUDIO_SKIP_SERVERS:-}" = 1 ]; then
  echo "== pytest on PostgreSQL + Redis: SKIPPED (CHARSTUDIO_SKIP_SERVERS=1)" >&2
  exit "$first"
fi

echo "== pytest on PostgreSQL + Redis (library, jobs, API)"
trap 'bash scripts/services.sh stop' EXIT
urls=$(bash scripts/services.sh start)
database_url=$(printf '%s\n' "$urls" | sed -n 's/^CHARSTUDIO_TEST_DATABASE_URL=//p')
queue_url=$(printf '%s\n' "$urls" | sed -n 's/^CHARSTUDIO_TEST_QUEUE_URL=//p')
second=0
run_pytest tests/library tests/jobs tests/api \
  --database-url "$database_url" --queue-url "$queue_url" || second=$?
if [ "$first" -ne 0 ]; then exit "$first"; fi
exit "$second"
