#!/bin/sh
# The web container: wait for the database, migrate to the latest state (as
# the seeds' containers did), then serve on all interfaces.
set -e
tries=0
until manage showmigrations >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    manage showmigrations   # prints why, on one line
    exit 1
  fi
  sleep 1
done
manage migrate
exec risky_migrations "0.0.0.0:${PORT:-8002}"
