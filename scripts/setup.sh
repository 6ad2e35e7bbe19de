#!/usr/bin/env bash
# Create .venv (Python 3.11) and install charstudio with its test tools. Idempotent: a
# second run installs nothing unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null 2>&1; then PYTHON=python3; fi
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "charstudio needs Python 3.11"'

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.charstudio-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing charstudio and its dependencies (torch==2.13.0 CPU build from disk)" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
    | { grep -v -E "^WARNING: Location .* is ignored" || true; }
  echo "$want" > "$stamp"
fi

# Character Studio's browser tests drive Debian's Chromium through Playwright (no
# `playwright install`: no browser is downloaded). Install it as root; print how otherwise.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium for the web UI's browser tests" >&2
    apt-get update && apt-get install -y chromium
  else
    echo "setup: /usr/bin/chromium is missing; the browser tests skip until you run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y chromium" >&2
  fi
fi
