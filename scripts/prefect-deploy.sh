#!/usr/bin/env bash
# Register build-musicqa/local from prefect.yaml on a process work pool and start its worker.
# Needs PREFECT_API_URL (a running `prefect server start`); run from the repository root.
set -euo pipefail
PREFECT="${PREFECT:-.venv/bin/prefect}"
POOL="${QAGEN_POOL:-local-process}"
: "${PREFECT_API_URL:?set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api (make prefect-server)}"
export QAGEN_REPO="${QAGEN_REPO:-$PWD}"
"$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1 \
  || "$PREFECT" work-pool create "$POOL" --type process
"$PREFECT" --no-prompt deploy --all
exec "$PREFECT" worker start --pool "$POOL" --type process
