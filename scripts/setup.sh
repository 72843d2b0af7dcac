#!/usr/bin/env bash
# Idempotent setup: Debian packages that are missing, .venv, and the project's Python packages
# (re-installed only when pyproject.toml changed). Usage: bash scripts/setup.sh [run|test]
# Also sourced by run.sh and test.sh, which call mp_setup themselves.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# mp_setup run|test: everything the app needs to run, or to run its tests.
mp_setup() {
    local mode="${1:-test}"
    case "$mode" in
        run)
            step "system packages (run)" ensure_run_packages
            step "python packages" ensure_venv
            ;;
        test)
            step "system packages (test)" ensure_test_packages
            step "python packages (with test extras)" ensure_venv test
            ;;
        *) die "usage: setup.sh [run|test]" ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    mp_setup "${1:-test}"
    log "setup complete"
fi
