#!/usr/bin/env bash
# The prepared GPU check, in one call (bench/gpu/README.md):
#
#   bench/gpu/prepare.sh                 # here: the Debian -dev packages, as .debs, into .device/debs
#   run (device tool): bench/gpu/run.sh  # there, with carry [".device"]: build, then measure
#   bench/gpu/run.sh --dry-run           # any machine: every step on CPU, tiny shapes, in seconds
#
# Writes gpu-results.json (and the logs of every step) to $OUT (the device
# tool's folder), else to --out, else to runs/gpu. Exit status 0 when every
# step ran; the JSON says what each found either way.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=""
for candidate in "${OPENBA_GPU_PYTHON:-}" /opt/torch/.venv/bin/python3 .venv/bin/python python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import torch' >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "bench/gpu/run.sh: no Python with torch (tried \$OPENBA_GPU_PYTHON, /opt/torch/.venv, .venv, python3)" >&2
  exit 2
fi
exec "$python" bench/gpu/run.py "$@"
