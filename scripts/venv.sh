#!/usr/bin/env bash
# Creates (or checks) the project's virtual environment .venv with the pinned
# PyPI torch and prints nothing else on success. Safe to re-run: a venv that
# already holds the pinned versions is left as it is.
# OPENBA_BASE_PYTHON (default /usr/bin/python3) is the interpreter the venv is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
torch_version=2.11.0
numpy_version=2.3.5
# transformers' own T5 (and, through sentencepiece, its T5Tokenizer) is the tests' reference for
# the T5 family (tests/python/t5_reference.py).
transformers_version=4.57.1
sentencepiece_version=0.2.3
venv=.venv
base_python=${OPENBA_BASE_PYTHON:-/usr/bin/python3}
[ -x "$base_python" ] || base_python=$(command -v python3)

have_pins() {
  "$venv/bin/python" - "$torch_version" "$numpy_version" "$transformers_version" "$sentencepiece_version" <<'PY' 2>/dev/null
import sys
import numpy, sentencepiece, torch, transformers
have = (torch.__version__.split("+")[0], numpy.__version__, transformers.__version__, sentencepiece.__version__)
sys.exit(0 if have == tuple(sys.argv[1:5]) else 1)
PY
}

if [ -x "$venv/bin/python" ] && have_pins; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "venv: creating $venv from $base_python"
  "$base_python" -m venv "$venv"
fi
echo "venv: installing torch==$torch_version numpy==$numpy_version transformers==$transformers_version sentencepiece==$sentencepiece_version into $venv"
start=$(date +%s)
"$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$torch_version" "numpy==$numpy_version" \
  "transformers==$transformers_version" "sentencepiece==$sentencepiece_version"
echo "venv: installed in $(( $(date +%s) - start )) s"
have_pins || { echo "venv: $venv does not hold torch $torch_version / numpy $numpy_version / transformers $transformers_version / sentencepiece $sentencepiece_version after pip install" >&2; exit 1; }
