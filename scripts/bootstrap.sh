#!/usr/bin/env bash
# Set up a bare machine that has only Python 3.11: uv in a private tools venv, then the locked
# workspace into .venv. Idempotent and quick when already done. Prints the uv to use.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
else
  if [ ! -x .tools/bin/uv ]; then
    PY=$(command -v python3.11 || command -v python3)
    "$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
      || { echo "cardcore needs Python 3.11 (found $("$PY" --version))" >&2; exit 1; }
    "$PY" -m venv .tools >&2
    .tools/bin/pip install --quiet --disable-pip-version-check uv >&2
  fi
  UV=$PWD/.tools/bin/uv
fi
"$UV" sync --frozen --quiet >&2
echo "$UV"
