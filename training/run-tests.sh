#!/usr/bin/env bash
# Runs the training pipeline's tests in its venv (made by setup-venv.sh if missing).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || bash setup-venv.sh
exec .venv/bin/python -m pytest -q tests "$@"
