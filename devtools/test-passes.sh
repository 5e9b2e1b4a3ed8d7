#!/usr/bin/env bash
# `make test`'s two passes, side by side: pass 1 runs every test on SQLite but
# those pinned to PostgreSQL (`postgres`), pass 2 the tests marked `engine`
# and `postgres` on PostgreSQL.  Most of either pass waits on real processes
# and sockets, so they share the machine well; pass 2's report is printed after
# pass 1's, and the two summary lines come last.
#
# Each pass is bounded (PASS_TIMEOUT seconds, default 1800): a pass that hangs
# is stopped with SIGTERM, which makes pytest print every thread's stack (see
# tests/conftest.py), so a hang fails with a place to look instead of holding
# CI until its own limit.  Exits non-zero if either pass failed.
#
# Usage: devtools/test-passes.sh PYTHON PG_URL [pytest arguments...]
set -uo pipefail
python=$1; pg_url=$2; shift 2
limit=${PASS_TIMEOUT:-1800}
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

pg_reachable() {
  "$python" -c "import psycopg, sys; psycopg.connect(sys.argv[1].rsplit('/', 1)[0] + '/postgres', connect_timeout=3).close()" "$pg_url" 2>/dev/null
}

bounded() {
  timeout --signal=TERM --kill-after=30 "$limit" "$@"
}

stacks() {  # every thread's stack, if the pass was stopped
  if [ -s "$1" ]; then echo "-- every thread's stack when it was stopped --"; cat "$1"; fi
}

said() {  # what a pass said about itself, or why it said nothing
  local rc=$1 log=$2
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "did not finish within ${limit}s and was stopped (its stacks are printed above)"
  else
    grep -h '^Pass on ' "$log" || echo "ended with status $rc before its summary"
  fi
}

pass2=""
if pg_reachable; then
  echo "== Pass 2 of 2 started beside pass 1: the tests marked engine or postgres, on PostgreSQL ($pg_url); its report follows =="
  (TEST_STACKS_FILE="$logdir/pass2.stacks" DATABASE_URL="$pg_url" bounded "$python" -m pytest -m "engine or postgres" -p no:cacheprovider "$@" >"$logdir/pass2.log" 2>&1
   echo $? >"$logdir/pass2.rc") &
  pass2=$!
elif [ "${CI:-}" = "true" ]; then
  echo "CI=true but PostgreSQL is unreachable at $pg_url"; exit 1
else
  echo "PostgreSQL is unreachable at $pg_url: pass 2 does not run"
fi

echo "== Pass 1 of 2: every test but those pinned to PostgreSQL, on SQLite =="
bounded env -u DATABASE_URL TEST_STACKS_FILE="$logdir/pass1.stacks" "$python" -m pytest -m "not postgres" "$@" 2>&1 | tee "$logdir/pass1.log"
rc1=${PIPESTATUS[0]}
stacks "$logdir/pass1.stacks"
rc2=0
if [ -n "$pass2" ]; then
  wait "$pass2"
  echo
  echo "== Pass 2 of 2: the tests marked engine or postgres, on PostgreSQL ($pg_url) =="
  cat "$logdir/pass2.log"
  stacks "$logdir/pass2.stacks"
  rc2=$(cat "$logdir/pass2.rc" 2>/dev/null || echo 1)
  # pytest's 5 is "no tests selected": none of the tests asked for (PYTEST_ARGS) is marked engine or postgres.
  if [ "$rc2" -eq 5 ]; then rc2=0; fi
fi
echo
echo "== Both passes =="
echo "Pass 1: $(said "$rc1" "$logdir/pass1.log")"
if [ -n "$pass2" ]; then echo "Pass 2: $(said "$rc2" "$logdir/pass2.log")"; fi
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
