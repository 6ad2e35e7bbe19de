#!/usr/bin/env bash
# Create .venv (Python 3.11) and install charstudio with its test tools. Idempotent: a
# second run installs nothing unless what pyproject.toml asks pip to install changed.
# Needs no root and no apt: the browser for the studio's UI tests is installed by
# scripts/setup-browser.sh, which only scripts/test.sh calls.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null 2>&1; then PYTHON=python3; fi
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "charstudio needs Python 3.11"'

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
# The stamp covers what pip installs (build system, dependencies, extras, entry points),
# not comments: editing a comment in pyproject.toml does not reinstall.
stamp=.venv/.charstudio-installed
want=$("$PYTHON" - <<'PY'
import hashlib, json, tomllib
data = tomllib.load(open("pyproject.toml", "rb"))
keys = {k: data["project"].get(k) for k in ("dependencies", "optional-dependencies", "scripts")}
keys["build-system"] = data.get("build-system")
print(hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest())
PY
)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing charstudio and its dependencies (torch==2.13.0 CPU build from disk)" >&2
  .venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 \
    | { grep -v -E "^WARNING: Location .* is ignored" || true; }
  echo "$want" > "$stamp"
fi
