#!/bin/bash
# Installs what the tests need (apt and pip, idempotent) and runs the whole test suite.
# Usage: sudo scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/python -m pytest "$@"
