#!/usr/bin/env bash
# `make test`'s two passes, side by side: pass 1 runs every test on SQLite but
# those pinned to PostgreSQL (`postgres`), pass 2 the tests marked `engine`
# and `postgres` on PostgreSQL.  Most of either pass waits
# on real processes and sockets, so they share the machine well; pass 2's
# report is printed after pass 1's.  Exits non-zero if either pass failed.
#
# Usage: devtools/test-passes.sh PYTHON PG_URL [pytest arguments...]
set -uo pipefail
python=$1; pg_url=$2; shift 2
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

pg_reachable() {
  "$python" -c "import psycopg, sys; psycopg.connect(sys.argv[1].rsplit('/', 1)[0] + '/postgres', connect_timeout=3).close()" "$pg_url" 2>/dev/null
}

pass2=""
if pg_reachable; then
  echo "== Pass 2 of 2 started beside pass 1: the tests marked engine or postgres, on PostgreSQL ($pg_url); its report follows =="
  (DATABASE_URL="$pg_url" "$python" -m pytest -m "engine or postgres" -p no:cacheprovider "$@" >"$logdir/pass2.log" 2>&1
   echo $? >"$logdir/pass2.rc") &
  pass2=$!
elif [ "${CI:-}" = "true" ]; then
  echo "CI=true but PostgreSQL is unreachable at $pg_url"; exit 1
else
  echo "PostgreSQL is unreachable at $pg_url: pass 2 does not run"
fi

echo "== Pass 1 of 2: every test but those pinned to PostgreSQL, on SQLite =="
env -u DATABASE_URL "$python" -m pytest -m "not postgres" "$@"
rc1=$?
rc2=0
if [ -n "$pass2" ]; then
  wait "$pass2"
  echo
  echo "== Pass 2 of 2: the tests marked engine or postgres, on PostgreSQL ($pg_url) =="
  cat "$logdir/pass2.log"
  rc2=$(cat "$logdir/pass2.rc" 2>/dev/null || echo 1)
fi
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
