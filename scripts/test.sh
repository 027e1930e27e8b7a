#!/usr/bin/env bash
# The test suite: everything once under TensorFlow, then the backend-dependent tests under JAX and PyTorch.
# Extra arguments go to every pytest call (e.g. `bash scripts/test.sh -x -k cca`).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh || exit 1

status=0
run() {
  local backend=$1; shift
  echo "=== KERAS_BACKEND=$backend pytest $*"
  KERAS_BACKEND=$backend python3 -m pytest -q -p no:cacheprovider "$@"
  local rc=$?
  # 5 = no test collected (e.g. a -k filter that matches nothing under one backend): not a failure.
  if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then status=1; echo "=== FAILED under $backend (exit $rc)"; fi
}
run tensorflow "$@"
run jax -m "not single_backend and not slow" "$@"
run torch -m "not single_backend and not slow" "$@"
[ $status -eq 0 ] && echo "=== all backends passed" || echo "=== some backend failed"
exit $status
