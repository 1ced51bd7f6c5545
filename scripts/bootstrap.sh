#!/usr/bin/env bash
# Set up a bare machine that has only Python (3.11, 3.12 or 3.13: the versions every locked
# dependency publishes wheels for, see tests/test_python_versions.py): uv in a private tools
# venv, then the locked workspace into .venv. Idempotent and quick when already done. Prints
# the uv to use.
set -euo pipefail
cd "$(dirname "$0")/.."
SUPPORTED="3.11, 3.12 or 3.13"
supported() { "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)'; }
if command -v uv >/dev/null 2>&1; then
  UV=$(command -v uv)
else
  if [ ! -x .tools/bin/uv ]; then
    PY=""
    for candidate in python3 python3.13 python3.12 python3.11; do
      if command -v "$candidate" >/dev/null 2>&1 && supported "$candidate" 2>/dev/null; then
        PY=$(command -v "$candidate")
        break
      fi
    done
    if [ -z "$PY" ]; then
      found=$(python3 --version 2>&1 || echo "no python3")
      echo "cardcore needs Python $SUPPORTED (found: $found)" >&2
      exit 1
    fi
    "$PY" -m venv .tools >&2
    .tools/bin/pip install --quiet --disable-pip-version-check uv >&2
  fi
  UV=$PWD/.tools/bin/uv
fi
if [ ! -d .venv ] && [ -x .tools/bin/python ]; then
  # the first sync: the venv gets the Python the tools venv was made with
  "$UV" sync --frozen --quiet --compile-bytecode --python .tools/bin/python >&2
else
  "$UV" sync --frozen --quiet --compile-bytecode >&2
fi
# Bytecode for the workspace's own (editable) packages too: where PYTHONDONTWRITEBYTECODE is set,
# every process would otherwise compile every module it imports, at every start (seconds per
# `cardcore` command or service process). Cheap when nothing changed.
.venv/bin/python -m compileall -q -j 0 libs services tools >/dev/null
echo "$UV"
