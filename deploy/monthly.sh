#!/usr/bin/env bash
# The monthly run every recipe here calls: build every audience's pack and deliver it, with `dvc repro`.
#
# - Runs in the project folder this script sits in (deploy/..), with the project's .venv when it has one.
# - Delivery follows params/deliver.yaml (send: true to email); SMTP and database secrets come from the
#   environment or the git-ignored .env in the project folder, never from params or this file.
# - The delivery ledger (.datastory/ledger.json) makes a rerun send nothing twice: run it again after a failure.
# - --keep-going: a failing audience does not stop the others; the exit status still says it failed.
# - Its output is appended to .datastory/monthly.log (git-ignored): the last run is the end of that file.
# Exit status: dvc's: 0 when every stage ran (or had nothing to do); non-zero when a stage failed. The log
# names the stage and `datastory`'s one-line reason: it exits 2 for a problem you can fix (bad data or params,
# a recipient left without the email), 3 when delivery was held by the quality gate or is still open from an
# earlier run (README, "Email delivery"); 1 is a bug.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/dvc ]; then
  PATH="$PWD/.venv/bin:$PATH"
fi
export PATH
mkdir -p .datastory
exec > >(tee -a .datastory/monthly.log) 2>&1
echo "== datastory monthly run in $PWD, started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
status=0
dvc repro --keep-going "$@" || status=$?
dvc status || true
echo "== datastory monthly run finished $(date -u +%Y-%m-%dT%H:%M:%SZ) with exit status $status"
exit "$status"
