#!/usr/bin/env bash
# Install sheetnet on a fresh Debian machine with Python 3.11:
#   - LibreOffice headless (Debian packages), the recalculation engine, when soffice is missing;
#   - a virtual environment in .venv with sheetnet, the CPU build of torch (torch==2.13.0: any
#     other spec pulls a multi-GB CUDA build) and, with --test, the test tools (pytest-xdist
#     among them: the README's test command runs on every core, -n auto);
#   - with --test: Gnumeric (ssconvert) and poppler-utils (pdftoppm) when missing, since the tests
#     recalculate every example in Gnumeric and render charts to PNG; IronCalc comes with the
#     test extra.
# Usage: bash scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

if ! command -v soffice >/dev/null 2>&1; then
  echo "setup: installing LibreOffice headless (libreoffice-calc-nogui, python3-uno)"
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends libreoffice-calc-nogui python3-uno
fi

if [ -n "$extras" ]; then
  missing=""
  command -v ssconvert >/dev/null 2>&1 || missing="$missing gnumeric"
  command -v pdftoppm >/dev/null 2>&1 || missing="$missing poppler-utils"
  if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    $sudo apt-get update -q
    $sudo apt-get install -y -q --no-install-recommends $missing
  fi
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv 2>/dev/null || {
    $sudo apt-get install -y -q python3-venv && "$python" -m venv .venv; }
fi
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".${extras}"
echo "setup: ready ($(.venv/bin/python --version), $(soffice --version 2>/dev/null | head -1))"
