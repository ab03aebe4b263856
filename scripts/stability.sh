#!/usr/bin/env bash
# The suite must not depend on an idle machine: runs `npm test` N times in a row (default 2) beside a
# CPU-bound process (one busy core at normal priority) and prints each run's exit code and duration.
# Exit 0 only if every run passed.  Usage: bash scripts/stability.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-2}
node -e 'for (;;) {}' &
hog=$!
trap 'kill $hog 2>/dev/null' EXIT
failed=0
for ((i = 1; i <= runs; i++)); do
  start=$(date +%s)
  npm test > "stability-$i.log" 2>&1
  rc=$?
  echo "run $i: exit $rc in $(($(date +%s) - start)) s (log: stability-$i.log)"
  ((rc == 0)) || failed=1
done
exit $failed
