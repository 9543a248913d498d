#!/usr/bin/env bash
# The test suite: unit tests, end-to-end pipeline, kill-and-resume, and the real SLURM cluster test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${HETEROFL_SLURM:-auto}" != 0 ]; then
  trap 'bash .ci/slurm-down.sh' EXIT
  bash .ci/slurm-up.sh
  export HETEROFL_SLURM=1
fi
set +e
python -m pytest -q -ra --durations=15 tests
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$status"
