#!/usr/bin/env bash
# Creates training/.venv with the pinned dependencies (CPU PyTorch).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements.txt
