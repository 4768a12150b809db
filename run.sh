#!/usr/bin/env bash
# Opens napari with the SAM annotation widget docked, on the synthetic abdominal CT or on PATH
# (a NIfTI file or a DICOM series folder).   Usage: ./run.sh [PATH]
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
exec .venv/bin/napari-sam-mis view "$@"
