#!/usr/bin/env bash
# Build the lesson site into _build/html with warnings as errors, and print the elapsed time.
# Pages are executed on the default model through the Jupyter cache (_build/.jupyter_cache): a page whose
# code did not change is not run again, so a no-change rebuild is quick.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
# The pages run in the "python3" kernel; make sure it is this venv's Python.
if [ ! -f "$VENV/share/jupyter/kernels/python3/kernel.json" ]; then
  "$PY" -m ipykernel install --sys-prefix --name python3 >/dev/null
fi
export PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
start=$(date +%s.%N)
"$VENV/bin/jupyter-book" build . -W "$@"
end=$(date +%s.%N)
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
echo "book build: ${seconds} s"
echo "open _build/html/index.html in a browser, or: python3 -m http.server --directory _build/html 8000"
