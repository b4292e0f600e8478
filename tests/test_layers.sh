#!/usr/bin/env bash
# The include order of src/ folders (scripts/check_layers.sh), as a step of the test summary.
cd "${JL_ROOT:-.}" || exit 1
if bash scripts/check_layers.sh; then echo "[       OK ] check_layers"; else echo "[  FAILED  ] check_layers"; exit 1; fi
