#!/usr/bin/env bash
# Lints (ruff) and runs the whole test suite headless (GUI tests under a virtual X server).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
.venv/bin/ruff check .
exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
