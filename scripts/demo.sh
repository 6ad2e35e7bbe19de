#!/usr/bin/env bash
# Set up, then run charstudio's main job on the embedded defaults (SQLite, no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/charstudio demo "$@"
